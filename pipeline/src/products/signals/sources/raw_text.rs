//! Text frames read as bytes, so one bad frame does not cost the connection.
//!
//! RFC 6455 §8.1 has a client fail the connection on a text frame that is not UTF-8,
//! and tungstenite does (its stream ends with `Utf8`). A feed that sends one such frame
//! among thousands of good ones would then be reconnected to, over and over, and lose
//! what was in flight. Herald instead dead-letters that frame and keeps reading: this
//! adapter sits between the TCP stream and tungstenite, after the HTTP handshake, and
//! marks each server text frame (opcode 1) as binary (opcode 2), so tungstenite hands
//! over the bytes and the source checks UTF-8 itself (see
//! [`super::websocket::parse_frame`]). Nothing else in the byte stream changes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the reader is in the server's byte stream.
#[derive(Debug)]
enum State {
    /// The HTTP response: counts how much of `\r\n\r\n` was just seen.
    Handshake(usize),
    /// A frame header: the bytes of it read so far.
    Header(Vec<u8>),
    /// Payload bytes left in the current frame.
    Payload(u64),
}

/// An `AsyncRead + AsyncWrite` over `S` that turns server text frames into binary
/// frames (see the module docs). Writes pass through unchanged.
pub struct TextAsBinary<S> {
    inner: S,
    scanner: Scanner,
}

impl<S> TextAsBinary<S> {
    /// Wraps a stream on which the websocket handshake has not started yet.
    pub fn new(inner: S) -> Self {
        TextAsBinary {
            inner,
            scanner: Scanner {
                state: State::Handshake(0),
            },
        }
    }
}

/// Follows the server's byte stream across reads.
struct Scanner {
    state: State,
}

impl Scanner {
    /// Walks the bytes just read, flipping text opcodes.
    fn scan(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match &mut self.state {
                State::Handshake(seen) => {
                    const END: &[u8] = b"\r\n\r\n";
                    *seen = if bytes[i] == END[*seen] {
                        *seen + 1
                    } else if bytes[i] == END[0] {
                        1
                    } else {
                        0
                    };
                    if *seen == END.len() {
                        self.state = State::Header(Vec::with_capacity(14));
                    }
                    i += 1;
                }
                State::Header(header) => {
                    if header.is_empty() && bytes[i] & 0x0F == 0x1 {
                        bytes[i] = (bytes[i] & 0xF0) | 0x2;
                    }
                    header.push(bytes[i]);
                    i += 1;
                    if let Some(len) = payload_len(header) {
                        self.state = if len == 0 {
                            State::Header(Vec::with_capacity(14))
                        } else {
                            State::Payload(len)
                        };
                    }
                }
                State::Payload(left) => {
                    let take = (*left).min((bytes.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.state = State::Header(Vec::with_capacity(14));
                    }
                }
            }
        }
    }
}

/// The payload length once `header` is complete (RFC 6455 §5.2), `None` before.
fn payload_len(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let (ext, len7) = match header[1] & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(n as u64)),
    };
    let full = 2 + ext + if masked { 4 } else { 0 };
    if header.len() < full {
        return None;
    }
    Some(len7.unwrap_or_else(|| header[2..2 + ext].iter().fold(0u64, |n, b| (n << 8) | *b as u64)))
}

impl<S: AsyncRead + Unpin> AsyncRead for TextAsBinary<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.scanner.scan(&mut buf.filled_mut()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TextAsBinary<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n < 65536 => {
                f.push(126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend(payload);
        f
    }

    #[test]
    fn text_frames_become_binary_in_any_chunking() {
        let mut stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        let big = vec![b'x'; 70_000];
        let frames = [frame(1, b"{\"a\":1}"), frame(9, b""), frame(1, &[0xff, 0xfe]), frame(1, &big), frame(2, b"b")];
        for f in &frames {
            stream.extend(f);
        }
        for chunk in [1, 3, 7, 4096, stream.len()] {
            let mut a = TextAsBinary::new(()).scanner;
            let mut out = stream.clone();
            for piece in out.chunks_mut(chunk) {
                a.scan(piece);
            }
            let body = &out[out.len() - frames.iter().map(Vec::len).sum::<usize>()..];
            let mut at = 0;
            for (f, want) in frames.iter().zip([0x82, 0x89, 0x82, 0x82, 0x82]) {
                assert_eq!(body[at], want, "chunk {chunk}");
                assert_eq!(body[at + 1..at + f.len()], f[1..], "payload unchanged");
                at += f.len();
            }
            assert!(out.starts_with(b"HTTP/1.1 101"), "the handshake is untouched");
        }
    }
}
