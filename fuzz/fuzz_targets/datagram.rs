#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| p2pchat_tests::fuzz::datagram(data));
