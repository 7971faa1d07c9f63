//! QR codes as PNG images, for `OutboundMessage::qr_code` (deposit addresses).

use qrcode::{Color, QrCode};

/// Pixels per QR module: a 42-character address (29 modules, 37 with the quiet zone)
/// becomes a 296 px square, sharp on any phone.
const MODULE_PX: usize = 8;
/// Light modules around the code, the 4 the QR specification (ISO/IEC 18004) requires.
const QUIET_ZONE: usize = 4;

/// Encodes `data` as a black-on-white 8-bit greyscale PNG.
///
/// Errors: `data` is too long for a QR code (over 2,953 bytes).
///
/// ```
/// let png = herald_bot::outbound::qr::png("0x9858EfFD232B4033E47d90003D41EC34EcaEda94").unwrap();
/// assert_eq!(&png[1..4], b"PNG");
/// ```
pub fn png(data: &str) -> anyhow::Result<Vec<u8>> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| anyhow::anyhow!("QR code of {} bytes: {e}", data.len()))?;
    let modules = code.width();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
            for y in my * MODULE_PX..(my + 1) * MODULE_PX {
                pixels[y * side + mx * MODULE_PX..y * side + (mx + 1) * MODULE_PX].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}
