#![no_main]
use p2pchat_tests::fuzz::{RegistryOp, registry};
libfuzzer_sys::fuzz_target!(|ops: Vec<RegistryOp>| registry(&ops));
