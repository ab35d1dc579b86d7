//! Build script of the ESP32 firmware examples: gives the firmware the time it was built at
//! (`RAWPOST_BUILD_TIME`, Unix seconds), its time floor: certificate dates are never checked
//! against an earlier time, and against this one while SNTP has not answered.
//!
//! `SOURCE_DATE_EPOCH`, when set, is used instead (reproducible builds). The script runs again
//! when the firmware source or the pinned root changes, so the floor is the time of the last
//! build that changed either: never later than the real time, which is all a floor needs.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=../esp32-common/build.rs");
    println!("cargo:rerun-if-changed=../esp32-common/firmware.rs");
    println!("cargo:rerun-if-changed=../esp32-common/device.rs");
    println!("cargo:rerun-if-changed=../esp32-common/root-ca.pem");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let now = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(epoch) => epoch
            .trim()
            .parse::<u64>()
            .expect("SOURCE_DATE_EPOCH must be Unix seconds"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the build machine's clock is before 1970")
            .as_secs(),
    };
    println!("cargo:rustc-env=RAWPOST_BUILD_TIME={now}");
}
