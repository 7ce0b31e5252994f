//! Render tests: colours, wrapping, cursor movement, erasing, limits.

use super::*;

fn style() -> Style {
    Style::default()
}

fn run(text: &str, style: Style) -> Run {
    Run {
        text: text.to_owned(),
        style,
    }
}

#[test]
fn plain_lines_and_trailing_blanks() {
    let screen = render(b"hello  \r\nworld\r\n\r\nend\r\n", "utf-8");
    assert_eq!(screen.plain_text(), "hello\nworld\n\nend");
    assert_eq!(screen.rows.len(), 4);
    assert_eq!(screen.rows[0], vec![run("hello", style())]);
    assert!(screen.rows[2].is_empty());
    // Bare LF starts a new line at column 1.
    assert_eq!(render(b"one\ntwo", "ascii").plain_text(), "one\ntwo");
}

#[test]
fn sixteen_colours_and_attributes() {
    let screen = render(
        b"\x1b[1;31mred\x1b[0m \x1b[2;3;4;5;7;9;92;104mall\x1b[22;23;24;25;27;29;39;49mx",
        "utf-8",
    );
    let red = Style {
        fg: Color::Indexed(1),
        bold: true,
        ..style()
    };
    let all = Style {
        fg: Color::Indexed(10),
        bg: Color::Indexed(12),
        faint: true,
        italic: true,
        underline: true,
        blink: true,
        inverse: true,
        strike: true,
        ..style()
    };
    assert_eq!(
        screen.rows[0],
        vec![
            run("red", red),
            run(" ", style()),
            run("all", all),
            run("x", style())
        ]
    );
}

#[test]
fn indexed_and_true_colour() {
    let screen = render(
        b"\x1b[38;5;208;48;2;1;2;3ma\x1b[38:2::10:20:30;48:5:17mb\x1b[38:2:4:5:6mc\x1b[38;5mz",
        "utf-8",
    );
    let runs = &screen.rows[0];
    assert_eq!(runs[0].style.fg, Color::Indexed(208));
    assert_eq!(runs[0].style.bg, Color::Rgb(1, 2, 3));
    assert_eq!(runs[1].style.fg, Color::Rgb(10, 20, 30));
    assert_eq!(runs[1].style.bg, Color::Indexed(17));
    assert_eq!(runs[2].style.fg, Color::Rgb(4, 5, 6));
    // A truncated `38;5` changes nothing.
    assert_eq!(runs[2].text, "cz");
}

#[test]
fn empty_sgr_resets() {
    let screen = render(b"\x1b[31ma\x1b[mb\x1b[41;mc", "utf-8");
    assert_eq!(
        screen.rows[0],
        vec![
            run(
                "a",
                Style {
                    fg: Color::Indexed(1),
                    ..style()
                }
            ),
            run("bc", style())
        ]
    );
}

#[test]
fn wraps_at_right_edge_with_pending_wrap() {
    let line = "x".repeat(DEFAULT_COLUMNS);
    // Exactly 80 columns then CR LF: one row, no blank row (VT100 pending wrap).
    let screen = render(format!("{line}\r\nnext").as_bytes(), "utf-8");
    assert_eq!(screen.plain_text(), format!("{line}\nnext"));
    // 85 columns wrap onto a second row.
    let screen = render("y".repeat(85).as_bytes(), "utf-8");
    assert_eq!(screen.plain_text(), format!("{}\nyyyyy", "y".repeat(80)));
}

#[test]
fn wide_characters_take_two_cells() {
    let text = format!("{}中文", "a".repeat(79));
    let screen = render(text.as_bytes(), "utf-8");
    assert_eq!(screen.plain_text(), format!("{}\n中文", "a".repeat(79)));
    let screen = render("中文\x1b[2Dx".as_bytes(), "utf-8");
    assert_eq!(screen.plain_text(), "中x");
    let screen = render("e\u{301}!".as_bytes(), "utf-8");
    assert_eq!(screen.plain_text(), "e\u{301}!");
}

#[test]
fn cp437_box_drawing() {
    let screen = render(b"\xc9\xcd\xbb\r\n\xba \xba\r\n\xc8\xcd\xbc", "cp437");
    assert_eq!(screen.plain_text(), "╔═╗\n║ ║\n╚═╝");
}

#[test]
fn cursor_movement() {
    // CUP to absolute positions, CUF for spacing, CUB, CUU/CUD, CHA, VPA.
    let screen = render(b"\x1b[3;5Hc\x1b[1;1Ha\x1b[5Cb\x1b[2;10fz\x1b[3Dy", "utf-8");
    assert_eq!(screen.plain_text(), "a     b\n       y z\n    c");
    let screen = render(b"x\x1b[2By\x1b[Az\x1b[20Gg\x1b[1dt", "utf-8");
    let expected = format!("x{}t\n  z{}g\n y", " ".repeat(19), " ".repeat(16));
    assert_eq!(screen.plain_text(), expected);
    // Out-of-range positions clamp to the last column.
    let screen = render(b"\x1b[1;200Hq", "utf-8");
    assert_eq!(screen.plain_text(), format!("{}q", " ".repeat(79)));
}

#[test]
fn controls_bs_tab_cr() {
    let screen = render(b"abc\x08X\tT\rZ", "utf-8");
    assert_eq!(screen.plain_text(), "ZbX     T");
}

#[test]
fn save_and_restore_cursor() {
    let screen = render(b"ab\x1b7\x1b[31m\r\n12\x1b8c\x1b[sde\x1b[u!", "utf-8");
    assert_eq!(screen.plain_text(), "abc!e\n12");
    // ESC 8 restores the style saved by ESC 7 (default).
    assert_eq!(screen.rows[0], vec![run("abc!e", style())]);
    assert_eq!(screen.rows[1][0].style.fg, Color::Indexed(1));
    // `CSI u` restores the position only.
    let screen = render(b"ab\x1b[s\x1b[32m\r\n\x1b[uc", "utf-8");
    assert_eq!(screen.rows[0][1].style.fg, Color::Indexed(2));
}

#[test]
fn erase_line_and_display() {
    let screen = render(b"hello\x1b[3D\x1b[K!\r\nworld\x1b[1;2H\x1b[1K", "utf-8");
    assert_eq!(screen.plain_text(), "  !\nworld");
    let screen = render(b"one\r\ntwo\r\nthree\x1b[2;2H\x1b[J", "utf-8");
    assert_eq!(screen.plain_text(), "one\nt");
    let screen = render(b"junk\r\njunk\x1b[2Jart", "utf-8");
    assert_eq!(screen.plain_text(), "art");
    // Erasing with a background colour keeps the coloured blanks.
    let screen = render(b"\x1b[44m\x1b[2K", "utf-8");
    assert_eq!(screen.rows[0][0].text, " ".repeat(DEFAULT_COLUMNS));
    assert_eq!(screen.rows[0][0].style.bg, Color::Indexed(4));
}

#[test]
fn unknown_sequences_are_ignored() {
    let screen = render(
        b"\x1b[?25l\x1b]0;title\x07\x1bPq\x1b\\\x1b[5 qok\x1b(B\x1b[2026h\x1b[6n",
        "utf-8",
    );
    assert_eq!(screen.plain_text(), "ok");
}

#[test]
fn limits_rows_and_input() {
    let screen = render("x\n".repeat(MAX_SCREEN_ROWS + 50).as_bytes(), "utf-8");
    assert_eq!(screen.rows.len(), MAX_SCREEN_ROWS);
    let screen = render(b"\x1b[65535;65535Hq\x1b[65535Aw", "utf-8");
    assert_eq!(screen.rows.len(), 1);
    assert_eq!(screen.plain_text().trim(), "w");
    let mut big = vec![b'\r'; MAX_RENDER_BYTES];
    big.extend_from_slice(b"too late");
    assert_eq!(render(&big, "utf-8"), Screen::default());
    // Erase amplification is bounded.
    let flood = b"\x1b[41m\x1b[999;1H\x1b[1J".repeat(2000);
    let screen = render(&flood, "utf-8");
    assert!(screen.rows.len() <= MAX_SCREEN_ROWS);
}
