//! The banner as the page shows it: which bytes (before and after the return, combined as
//! the seed page does) and how a styled run becomes CSS classes. The engine's
//! `ansi::render` interprets the escape sequences; nothing here touches the DOM, and server
//! text only ever becomes text nodes.

use iacscope_shared::ansi::{self, Color, Style};

/// Spec §7: "The banner image combines before and after: after is appended only when its
/// ANSI-stripped text is not already inside before."
pub fn combine(before: &[u8], after: &[u8]) -> Vec<u8> {
    let mut out = before.to_vec();
    let stripped = ansi::strip_escapes(after);
    let text = String::from_utf8_lossy(&stripped);
    if !text.is_empty() {
        let before_text = ansi::strip_escapes(before);
        let inside = before_text
            .windows(text.len())
            .any(|w| w == text.as_bytes());
        if !inside {
            out.extend_from_slice(after);
        }
    }
    out
}

/// The CSS classes of a run: `fg-N` / `bg-N` for palette colours (0–15 follow the page's
/// theme, 16–255 are the xterm cube and grey ramp), one class per attribute. 24-bit colours
/// map to the nearest of the 256: the app's Content-Security-Policy (`style-src 'self'`)
/// blocks `style` attributes, so colours can only come from the stylesheet.
pub fn classes(style: &Style) -> String {
    let (fg, bg) = if style.inverse {
        (style.bg, style.fg)
    } else {
        (style.fg, style.bg)
    };
    let mut c = Vec::new();
    if let Some(i) = palette_index(fg) {
        c.push(format!("fg-{i}"));
    }
    if let Some(i) = palette_index(bg) {
        c.push(format!("bg-{i}"));
    }
    if style.inverse {
        if fg == Color::Default {
            c.push("fg-inverse".into());
        }
        if bg == Color::Default {
            c.push("bg-inverse".into());
        }
    }
    for (on, name) in [
        (style.bold, "bold"),
        (style.faint, "faint"),
        (style.italic, "italic"),
        (style.underline, "underline"),
        (style.blink, "blink"),
        (style.strike, "strike"),
    ] {
        if on {
            c.push(name.into());
        }
    }
    c.join(" ")
}

/// The xterm palette index of a colour (`None` for the default colour).
pub fn palette_index(c: Color) -> Option<u8> {
    match c {
        Color::Default => None,
        Color::Indexed(i) => Some(i),
        Color::Rgb(r, g, b) => Some(nearest(r, g, b)),
    }
}

/// The cube levels of xterm's 6×6×6 colour cube.
const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The nearest colour among the cube (16–231) and the grey ramp (232–255).
fn nearest(r: u8, g: u8, b: u8) -> u8 {
    let level = |v: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(LEVELS[i]) - i32::from(v)).abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let grey_i = ((avg.saturating_sub(3)) / 10).min(23);
    let grey_v = (8 + 10 * grey_i) as u8;
    let dist = |(x, y, z): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(x, r) + d(y, g) + d(z, b)
    };
    if dist((grey_v, grey_v, grey_v)) < dist(cube) {
        232 + grey_i as u8
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_is_appended_only_when_new() {
        assert_eq!(
            combine(b"Welcome\r\n", b"\x1b[1mWelcome\x1b[0m"),
            b"Welcome\r\n"
        );
        assert_eq!(combine(b"Hi\r\n", b"Login:"), b"Hi\r\nLogin:");
        assert_eq!(combine(b"Hi", b""), b"Hi");
    }

    #[test]
    fn styles_become_classes() {
        let s = Style {
            fg: Color::Indexed(9),
            bold: true,
            ..Style::default()
        };
        assert_eq!(classes(&s), "fg-9 bold");
        let s = Style {
            fg: Color::Indexed(196),
            bg: Color::Rgb(255, 0, 0),
            ..Style::default()
        };
        assert_eq!(classes(&s), "fg-196 bg-196");
        let s = Style {
            inverse: true,
            fg: Color::Indexed(2),
            ..Style::default()
        };
        assert_eq!(classes(&s), "bg-2 fg-inverse");
        assert_eq!(nearest(8, 8, 8), 232);
        assert_eq!(nearest(0, 0, 0), 16);
        assert_eq!(nearest(128, 128, 128), 244);
        assert_eq!(nearest(0, 135, 255), 33);
    }
}
