//! Everything a terminal (or anything pretending to be one) can send us, through every
//! decoder that reads it. Any panic is a bug: bad bytes must give errors.
//! Run: `cargo +nightly fuzz run zk_decode -- -max_total_time=120`

#![no_main]

use iclock_sync::source::zk::codec::attendance::{self, AttendanceLayout};
use iclock_sync::source::zk::codec::counters::Counters;
use iclock_sync::source::zk::codec::event::AttendanceEvent;
use iclock_sync::source::zk::codec::messages;
use iclock_sync::source::zk::codec::packet::{Packet, take_tcp_frame};
use iclock_sync::source::zk::codec::users::{UserLayout, decode_users};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Packet::decode(data);
    let _ = Packet::checksum_ok(data);
    let mut rest = data;
    while let Ok(Some((_, used))) = take_tcp_frame(rest) {
        rest = &rest[used..];
    }
    if let Ok(records) = attendance::split_log(data) {
        let count = data.first().map_or(0, |byte| u32::from(*byte));
        if let Ok(layout) = attendance::detect_layout(records, count, 2026) {
            for record in attendance::decode(records, layout) {
                let _ = record.time.to_datetime();
                let _ = record.time.text();
            }
        }
        for layout in [AttendanceLayout::Pin { size: 49 }, AttendanceLayout::Compact { time_at: 3 }] {
            attendance::decode(records, layout).for_each(drop);
        }
        let users = UserLayout::detect(records, count);
        for user in decode_users(records, users) {
            let _ = user.with_enabled(!user.enabled());
        }
    }
    let _ = Counters::decode(data);
    let _ = AttendanceEvent::decode(data);
    let _ = messages::parse_option_reply(data);
    let _ = messages::parse_buffer_ready(data);
    let _ = messages::parse_read_buffer(data);
    let _ = messages::parse_prepare_buffer(data);
});
