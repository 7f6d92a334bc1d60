//! What each completion of the io_uring loop is of: its user data holds the operation, the connection's slot and
//! that connection's serial, so one that arrives after its connection closed (and the slot was reused) is told
//! apart.

use io_uring::opcode;
use io_uring::squeue::Entry;

/// What a completion is of (the top byte of its user data).
pub const ACCEPT_HTTP: u8 = 1;
pub const ACCEPT_HTTPS: u8 = 2;
pub const RECEIVE: u8 = 3;
pub const SEND: u8 = 4;
pub const WAKE: u8 = 5;
pub const UDP: u8 = 6;
/// Cancellations and closes: nothing to do at their completion.
pub const OTHER: u8 = 7;
pub const QUIC: u8 = 8;

/// User data: the operation, the connection's slot (24 bits: MAX_CONNECTIONS is at most 10 million) and its
/// serial.
pub fn tag(op: u8, slot: usize, serial: u32) -> u64 {
    debug_assert!(slot < 1 << 24);
    u64::from(op) << 56 | (slot as u64 & 0xff_ffff) << 32 | u64::from(serial)
}

pub fn untag(data: u64) -> (u8, usize, u32) {
    ((data >> 56) as u8, ((data >> 32) & 0xff_ffff) as usize, data as u32)
}

/// Cancels the request whose user data is `data`.
pub fn cancel(data: u64) -> Entry {
    opcode::AsyncCancel::new(data).build().user_data(tag(OTHER, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_gives_back_operation_slot_and_serial() {
        for (op, slot, serial) in [(RECEIVE, 0, 0), (SEND, (1 << 24) - 1, u32::MAX), (ACCEPT_HTTPS, 12_345, 7)] {
            assert_eq!(untag(tag(op, slot, serial)), (op, slot, serial));
        }
        assert_ne!(tag(SEND, 3, 1), tag(SEND, 3, 2), "a reused slot's next connection is told apart");
        assert_ne!(tag(SEND, 3, 1), tag(RECEIVE, 3, 1));
    }
}
