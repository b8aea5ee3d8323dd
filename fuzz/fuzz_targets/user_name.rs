#![no_main]
libfuzzer_sys::fuzz_target!(|name: &str| p2pchat_tests::fuzz::user_name(name));
