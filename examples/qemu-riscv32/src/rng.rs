//! **TEST ONLY.** The TLS randomness of this program comes from a ChaCha20 generator with a fixed
//! seed, so that every run makes the same handshake and the measured figures repeat exactly.
//! Its keys are predictable: never use this in a device. A firmware draws from the chip's true
//! random number generator, as `examples/esp32-common/firmware.rs` does (esp-hal's `Trng`).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The fixed-seed generator (test only, see the module documentation).
pub type TestRng = ChaCha20Rng;

/// The same sequence on every run (test only).
pub fn fixed_seed_test_rng() -> TestRng {
    ChaCha20Rng::from_seed(*b"rawpost QEMU test: fixed seed!!!")
}
