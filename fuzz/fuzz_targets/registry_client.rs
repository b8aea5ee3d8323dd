#![no_main]
libfuzzer_sys::fuzz_target!(|datagrams: Vec<Vec<u8>>| p2pchat_tests::fuzz::registry_client(&datagrams));
