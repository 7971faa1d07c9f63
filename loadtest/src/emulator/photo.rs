//! An uploaded photo, checked as Telegram checks it, and read as a phone camera would.
//!
//! Telegram's rules (core.telegram.org/bots/api#sendphoto): at most 10 MB; width and
//! height at most 10000 in total; a width/height ratio of at most 20. The emulator reads
//! PNG (what Herald sends); a JPEG is accepted unread, anything else is refused as
//! Telegram refuses what it cannot decode.

/// Telegram's size limit for an uploaded photo.
const MAX_BYTES: usize = 10 * 1024 * 1024;

/// What the emulator saw in a photo.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Photo {
    pub width: u32,
    pub height: u32,
    /// The text of the QR code in it, when it holds one.
    pub qr_text: Option<String>,
}

/// Checks an upload and reads it.
///
/// Errors: the Bot API's description for a refused photo.
pub fn read(bytes: &[u8]) -> Result<Photo, &'static str> {
    if bytes.len() > MAX_BYTES {
        return Err("Bad Request: file is too big");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Photo::default()); // JPEG: fine for Telegram, not read here
    }
    let (width, height, grey) = decode_png(bytes).ok_or("Bad Request: IMAGE_PROCESS_FAILED")?;
    if width + height > 10_000 || width.max(height) > 20 * width.min(height) {
        return Err("Bad Request: PHOTO_INVALID_DIMENSIONS");
    }
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| grey[y * width as usize + x]);
    let qr_text = prepared.detect_grids().first().and_then(|g| g.decode().ok()).map(|(_, text)| text);
    Ok(Photo { width, height, qr_text })
}

/// Width, height and one grey byte per pixel (the first channel: Herald's codes are
/// black on white) of a PNG.
fn decode_png(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut buf).ok()?;
    let channels = frame.color_type.samples();
    let grey = buf[..frame.buffer_size()].chunks(channels).map(|px| px[0]).collect();
    Some((frame.width, frame.height, grey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_telegram_refuses() {
        assert_eq!(read(b"not an image"), Err("Bad Request: IMAGE_PROCESS_FAILED"));
        assert_eq!(read(&vec![0; MAX_BYTES + 1]), Err("Bad Request: file is too big"));
        let mut strip = Vec::new();
        let mut enc = png::Encoder::new(&mut strip, 2100, 100);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![255; 2100 * 100]).unwrap();
        w.finish().unwrap();
        assert_eq!(read(&strip), Err("Bad Request: PHOTO_INVALID_DIMENSIONS"));
    }
}
