//! The client's unidirectional streams (RFC 9114 §6.2): the first bytes name the type — the control stream, whose
//! frames are checked (SETTINGS first and once, no request or HTTP/2 frames), QPACK's encoder and decoder streams
//! (read and dropped: with no dynamic table they carry nothing plutos needs), and types plutos does not know
//! (ignored). A push stream from a client is a connection error.

use crate::h3::frame;

/// Bytes of a control stream kept while a frame on it is not whole.
const MAX_CONTROL_FRAME: usize = 16 * 1024;

/// A unidirectional stream of the client's.
pub(super) enum Uni {
    /// Its type has not arrived yet.
    Unknown(Vec<u8>),
    /// The control stream: a frame not yet whole, whether SETTINGS came.
    Control { pending: Vec<u8>, settings: bool },
    /// QPACK's encoder or decoder stream: read and dropped.
    Qpack,
    /// A type plutos does not know: reading it was stopped.
    Ignored,
}

impl Uni {
    /// Takes the next bytes of the stream; `Err`: a connection error.
    pub(super) fn take(&mut self, bytes: &[u8]) -> Result<(), (u64, &'static str)> {
        match self {
            Uni::Unknown(start) => {
                start.extend_from_slice(bytes);
                let Some((kind, len)) = frame::varint(start) else {
                    return Ok(());
                };
                let rest = start.split_off(len);
                *self = match kind {
                    frame::CONTROL_STREAM => Uni::Control { pending: Vec::new(), settings: false },
                    frame::ENCODER_STREAM | frame::DECODER_STREAM => Uni::Qpack,
                    frame::PUSH_STREAM => {
                        return Err((frame::H3_STREAM_CREATION_ERROR, "a client may not push"));
                    }
                    _ => Uni::Ignored,
                };
                self.take(&rest)
            }
            Uni::Control { pending, settings } => {
                pending.extend_from_slice(bytes);
                control_frames(pending, settings)
            }
            Uni::Qpack | Uni::Ignored => Ok(()),
        }
    }
}

/// The whole frames of the client's control stream, taken from `pending` (RFC 9114 §6.2.1, §7.2).
fn control_frames(pending: &mut Vec<u8>, settings: &mut bool) -> Result<(), (u64, &'static str)> {
    let mut at = 0;
    while let Some(header) = frame::header(&pending[at..]) {
        let end = at + header.header_len + header.len as usize;
        if header.len as usize > MAX_CONTROL_FRAME {
            return Err((frame::H3_EXCESSIVE_LOAD, "a control frame too large"));
        }
        if end > pending.len() {
            break;
        }
        let payload = &pending[at + header.header_len..end];
        match header.kind {
            frame::SETTINGS if !*settings => {
                frame::check_settings(payload).map_err(|e| (e, "invalid SETTINGS"))?;
                *settings = true;
            }
            _ if !*settings => return Err((frame::H3_MISSING_SETTINGS, "the control stream must start with SETTINGS")),
            frame::SETTINGS => return Err((frame::H3_FRAME_UNEXPECTED, "a second SETTINGS")),
            frame::DATA | frame::HEADERS | frame::PUSH_PROMISE => {
                return Err((frame::H3_FRAME_UNEXPECTED, "a request frame on the control stream"));
            }
            kind if frame::is_http2_only(kind) => return Err((frame::H3_FRAME_UNEXPECTED, "an HTTP/2 frame")),
            // GOAWAY, MAX_PUSH_ID, CANCEL_PUSH (plutos never pushes) and unknown types: nothing to do.
            _ => {}
        }
        at = end;
    }
    pending.drain(..at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `kind` with `payload`.
    fn frame(kind: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::put_header(kind, payload.len(), &mut out);
        out.extend_from_slice(payload);
        out
    }

    /// The stream's bytes taken in pieces of `piece`; the first error.
    fn take_in_pieces(bytes: &[u8], piece: usize) -> (Uni, Result<(), u64>) {
        let mut uni = Uni::Unknown(Vec::new());
        for chunk in bytes.chunks(piece) {
            if let Err((error, _)) = uni.take(chunk) {
                return (uni, Err(error));
            }
        }
        (uni, Ok(()))
    }

    /// A client's control stream: its type and SETTINGS (what plutos sends is a valid one).
    fn control_start() -> Vec<u8> {
        let mut out = Vec::new();
        frame::control_stream_start(16 * 1024, &mut out);
        out
    }

    #[test]
    fn a_control_stream_takes_settings_first_then_goaway_and_unknown_frames_whatever_the_pieces() {
        let mut stream = control_start();
        stream.extend(frame(frame::GOAWAY, &[0]));
        stream.extend(frame(frame::MAX_PUSH_ID, &[4]));
        stream.extend(frame(0x21, b"reserved type")); // 0x1f * N + 0x21: a grease frame.
        for piece in [1, 2, 7, stream.len()] {
            let (uni, result) = take_in_pieces(&stream, piece);
            assert_eq!(result, Ok(()), "pieces of {piece}");
            let Uni::Control { pending, settings } = uni else { panic!("a control stream") };
            assert!(settings && pending.is_empty(), "pieces of {piece}: every frame taken");
        }
    }

    #[test]
    fn a_control_stream_breaking_the_rules_is_a_connection_error() {
        let mut type_only = Vec::new();
        frame::put_varint(frame::CONTROL_STREAM, &mut type_only);
        let cases = [
            ([&type_only[..], &frame(frame::GOAWAY, &[0])].concat(), frame::H3_MISSING_SETTINGS),
            ([control_start(), frame(frame::SETTINGS, &[])].concat(), frame::H3_FRAME_UNEXPECTED),
            ([control_start(), frame(frame::DATA, b"x")].concat(), frame::H3_FRAME_UNEXPECTED),
            ([control_start(), frame(frame::HEADERS, b"x")].concat(), frame::H3_FRAME_UNEXPECTED),
            ([control_start(), frame(0x06, &[])].concat(), frame::H3_FRAME_UNEXPECTED), // HTTP/2's PING
            ([&type_only[..], &frame(frame::SETTINGS, &[0x04, 0x00])].concat(), frame::H3_SETTINGS_ERROR),
        ];
        for (stream, expected) in cases {
            assert_eq!(take_in_pieces(&stream, 3).1, Err(expected), "{stream:x?}");
        }
        // A frame announcing more than a control frame may hold is refused from its header, before its bytes.
        let mut huge = control_start();
        frame::put_header(0x21, MAX_CONTROL_FRAME + 1, &mut huge);
        assert_eq!(take_in_pieces(&huge, 5).1, Err(frame::H3_EXCESSIVE_LOAD));
    }

    #[test]
    fn other_stream_types_are_read_and_dropped_ignored_or_refused() {
        for kind in [frame::ENCODER_STREAM, frame::DECODER_STREAM] {
            let (uni, result) = take_in_pieces(&[kind as u8, 1, 2, 3], 1);
            assert!(matches!(uni, Uni::Qpack) && result.is_ok());
        }
        let mut grease = Vec::new();
        frame::put_varint(0x1f * 7 + 0x21, &mut grease);
        grease.extend(b"anything");
        let (uni, result) = take_in_pieces(&grease, 1);
        assert!(matches!(uni, Uni::Ignored) && result.is_ok(), "a two-byte type, split across reads");
        let (_, result) = take_in_pieces(&[frame::PUSH_STREAM as u8, 0], 2);
        assert_eq!(result, Err(frame::H3_STREAM_CREATION_ERROR), "a client may not push");
    }
}
