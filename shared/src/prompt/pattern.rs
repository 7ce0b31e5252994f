//! A tiny backtracking matcher with the semantics of Python's `re` on byte patterns, for the
//! handful of fixed prompt patterns telnetlib3 uses. It parses no pattern syntax: patterns are
//! `const` trees built by hand in `prompt.rs`.
//!
//! What it mirrors: leftmost-first search (`re.search`), ordered alternation, greedy
//! repetition with backtracking, one capture group, a negative lookahead, `^` and `$` (without
//! MULTILINE, `$` also matches before a final `\n`). Literals compare ASCII case-insensitively,
//! as Python's `(?i)` does for bytes patterns. Repetition is only allowed over a single-byte
//! class, which keeps the recursion depth bounded by the pattern size, not by the input.
//!
//! Like Python's `re`, a pathological input can cost time quadratic in the length of one line
//! (`.*` in the "More" pattern); it never recurses deeper than the pattern.

/// One byte test, e.g. Python's `\s` or `[\[<(]`.
pub(crate) type Class = fn(u8) -> bool;

/// Unbounded repetition count (`*`, `+`).
pub(crate) const MANY: usize = usize::MAX;

/// A pattern node.
#[derive(Clone, Copy)]
pub(crate) enum Node {
    /// A literal, compared ASCII case-insensitively.
    Lit(&'static [u8]),
    /// A byte class repeated `min..=max` times, greedy.
    Rep(Class, usize, usize),
    /// Nodes in sequence.
    Seq(&'static [Node]),
    /// Alternatives, tried in order.
    Alt(&'static [Node]),
    /// `(?:…)?`, greedy.
    Opt(&'static Node),
    /// The capture group (there is at most one per pattern).
    Group(&'static Node),
    /// `(?!…)`.
    NotFollowedBy(&'static Node),
    /// `^` without MULTILINE.
    Start,
    /// `$` without MULTILINE.
    End,
}

/// Where a search matched, and what the capture group took (if it took part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    pub group: Option<(usize, usize)>,
}

struct Ctx<'h> {
    hay: &'h [u8],
    group: Option<(usize, usize)>,
}

type Cont<'a, 'h> = &'a mut dyn FnMut(&mut Ctx<'h>, usize) -> bool;

/// Python `pattern.search(hay)`.
pub(crate) fn search(pat: &Node, hay: &[u8]) -> Option<Found> {
    let mut cx = Ctx { hay, group: None };
    for start in 0..=hay.len() {
        if !may_start(pat, hay, start) {
            continue;
        }
        let mut end = None;
        cx.group = None;
        if step(&mut cx, pat, start, &mut |_, e| {
            end = Some(e);
            true
        }) {
            return end.map(|end| Found {
                start,
                end,
                group: cx.group,
            });
        }
    }
    None
}

/// Python `bool(pattern.search(hay))`.
pub(crate) fn is_match(pat: &Node, hay: &[u8]) -> bool {
    search(pat, hay).is_some()
}

/// A cheap necessary condition for `pat` to match at `at`: its leading literal(s) are there.
/// Only a speed-up; it never changes what matches.
fn may_start(pat: &Node, hay: &[u8], at: usize) -> bool {
    match *pat {
        Node::Lit(lit) => hay
            .get(at..at + lit.len())
            .is_some_and(|next| next.eq_ignore_ascii_case(lit)),
        Node::Rep(class, min, _) => min == 0 || hay.get(at).is_some_and(|&b| class(b)),
        Node::Seq(nodes) => nodes.first().is_none_or(|first| may_start(first, hay, at)),
        Node::Alt(alts) => alts.iter().any(|alt| may_start(alt, hay, at)),
        Node::Group(inner) => may_start(inner, hay, at),
        Node::Opt(_) | Node::NotFollowedBy(_) | Node::Start | Node::End => true,
    }
}

/// Whether `needle` occurs in `hay`, ASCII case-insensitively: a pattern that needs a literal
/// cannot match text without it.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn step<'h>(cx: &mut Ctx<'h>, node: &Node, at: usize, k: Cont<'_, 'h>) -> bool {
    match *node {
        Node::Lit(lit) => {
            let Some(next) = cx.hay.get(at..at + lit.len()) else {
                return false;
            };
            next.eq_ignore_ascii_case(lit) && k(cx, at + lit.len())
        }
        Node::Rep(class, min, max) => {
            let rest = cx.hay.get(at..).unwrap_or_default();
            let n = rest.iter().take(max).take_while(|&&b| class(b)).count();
            if n < min {
                return false;
            }
            (min..=n).rev().any(|taken| k(cx, at + taken))
        }
        Node::Seq(nodes) => seq(cx, nodes, at, k),
        Node::Alt(alts) => alts.iter().any(|alt| step(cx, alt, at, k)),
        Node::Opt(inner) => step(cx, inner, at, k) || k(cx, at),
        Node::Group(inner) => {
            let saved = cx.group;
            let ok = step(cx, inner, at, &mut |cx, end| {
                let before = cx.group;
                cx.group = Some((at, end));
                if k(cx, end) {
                    return true;
                }
                cx.group = before;
                false
            });
            if !ok {
                cx.group = saved;
            }
            ok
        }
        Node::NotFollowedBy(inner) => {
            let saved = cx.group;
            let ahead = step(cx, inner, at, &mut |_, _| true);
            cx.group = saved;
            !ahead && k(cx, at)
        }
        Node::Start => at == 0 && k(cx, at),
        Node::End => {
            let len = cx.hay.len();
            let at_end = at == len || (at + 1 == len && cx.hay[at] == b'\n');
            at_end && k(cx, at)
        }
    }
}

fn seq<'h>(cx: &mut Ctx<'h>, nodes: &[Node], at: usize, k: Cont<'_, 'h>) -> bool {
    match nodes.split_first() {
        None => k(cx, at),
        Some((first, rest)) => step(cx, first, at, &mut |cx, next| seq(cx, rest, next, k)),
    }
}

/// Python bytes `\s`: `[ \t\n\r\f\v]`.
pub(crate) fn space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// Python bytes `\S`.
pub(crate) fn non_space(b: u8) -> bool {
    !space(b)
}

/// Python bytes `\d`.
pub(crate) fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `[^a-zA-Z0-9]`.
pub(crate) fn non_alnum(b: u8) -> bool {
    !b.is_ascii_alphanumeric()
}

/// `.` without DOTALL.
pub(crate) fn any_but_newline(b: u8) -> bool {
    b != b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(b: u8) -> bool {
        b == b'.'
    }

    const DIGITS: Node = Node::Group(&Node::Rep(digit, 1, MANY));
    // `(\d+)\.{1,3}x`
    const NUM_DOTS: Node = Node::Seq(&[DIGITS, Node::Rep(dot, 1, 3), Node::Lit(b"x")]);
    // `a(?!b)`
    const A_NOT_B: Node = Node::Seq(&[Node::Lit(b"a"), Node::NotFollowedBy(&Node::Lit(b"b"))]);
    // `(?:^|-)z($)`
    const EDGE: Node = Node::Seq(&[
        Node::Alt(&[Node::Start, Node::Lit(b"-")]),
        Node::Lit(b"z"),
        Node::End,
    ]);

    #[test]
    fn search_is_leftmost_with_group() {
        let found = search(&NUM_DOTS, b"ab 12..X").unwrap();
        assert_eq!((found.start, found.end, found.group), (3, 8, Some((3, 5))));
        assert!(search(&NUM_DOTS, b"12....x").is_none());
    }

    #[test]
    fn lookahead_and_anchors() {
        assert_eq!(search(&A_NOT_B, b"abac").map(|f| f.start), Some(2));
        assert!(is_match(&EDGE, b"z"));
        assert!(is_match(&EDGE, b"x-z\n"));
        assert!(!is_match(&EDGE, b"xz"));
        assert!(!is_match(&EDGE, b"-z\n\n"));
    }
}
