#![no_main]
use p2pchat_tests::fuzz::{ChatOp, chat_session};
libfuzzer_sys::fuzz_target!(|ops: Vec<ChatOp>| chat_session(&ops));
