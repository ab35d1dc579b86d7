//! rawpost on the ESP32-C6 (RISC-V RV32IMAC, 160 MHz): Wi-Fi → DHCP → DNS → TCP → TLS 1.3 → JSON POST.
//! The firmware is shared with the other chip and lives in `../esp32-common/firmware.rs`;
//! see the README's "On an ESP32" section for configuration, flashing and sizes.
#![no_std]
#![no_main]

/// The chip, printed at start and sent in the JSON body.
const CHIP: &str = "esp32c6";

#[path = "../../esp32-common/firmware.rs"]
mod firmware;
