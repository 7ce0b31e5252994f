//! The snippets a saved result offers for copying: an iframe of the proxy's `/embed/<id>`
//! widget, a Markdown badge linking to the permalink, and a MediaWiki external link. Server
//! text (the host) is escaped for each syntax, and only ever lands in a URL as a percent-
//! encoded path segment. Pure functions; the page renders them as text nodes.

use crate::route::{encode, Route};

/// The embed widget's size in the iframe snippet (CSS pixels).
pub const EMBED_WIDTH: u32 = 480;
pub const EMBED_HEIGHT: u32 = 260;

/// The three snippets for one saved scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippets {
    /// The absolute permalink, `<origin>/s/<id>`.
    pub permalink: String,
    pub iframe: String,
    pub markdown: String,
    pub mediawiki: String,
}

impl Snippets {
    /// The snippets of scan `id` of `host:port`, served from `origin` (`https://host[:port]`).
    pub fn new(origin: &str, id: &str, host: &str, port: u16) -> Snippets {
        let origin = origin.trim_end_matches('/');
        let permalink = format!("{origin}{}", Route::Permalink(id.to_owned()).href());
        let target = target(host, port);
        let iframe = format!(
            "<iframe src=\"{}\" width=\"{EMBED_WIDTH}\" height=\"{EMBED_HEIGHT}\" \
             title=\"{}\" loading=\"lazy\" referrerpolicy=\"no-referrer\" \
             style=\"border:0\"></iframe>",
            html_attr(&format!("{origin}/embed/{}", encode(id))),
            html_attr(&format!("telnet fingerprint of {target}")),
        );
        let badge = format!("{origin}/badge/{}/{port}.svg", encode(host));
        let markdown = format!("[![telnet]({badge})]({permalink})");
        let mediawiki = format!("[{permalink} {} telnet fingerprint]", wiki_text(&target));
        Snippets {
            permalink,
            iframe,
            markdown,
            mediawiki,
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Text safe inside a double-quoted HTML attribute.
pub fn html_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Text safe as the label of a MediaWiki external link: the characters that end the link
/// or start markup (`[ ] < > { } | ' & ~ =`) become numeric entities, controls are dropped.
pub fn wiki_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '[' | ']' | '<' | '>' | '{' | '}' | '|' | '\'' | '&' | '~' | '=' => {
                out.push_str(&format!("&#{};", u32::from(c)))
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn snippets_for_a_plain_host() {
        let s = Snippets::new("https://iacscope.example/", ID, "mud.example.org", 4000);
        assert_eq!(s.permalink, format!("https://iacscope.example/s/{ID}"));
        assert_eq!(
            s.iframe,
            format!(
                "<iframe src=\"https://iacscope.example/embed/{ID}\" width=\"480\" \
                 height=\"260\" title=\"telnet fingerprint of mud.example.org:4000\" \
                 loading=\"lazy\" referrerpolicy=\"no-referrer\" style=\"border:0\"></iframe>"
            )
        );
        assert_eq!(
            s.markdown,
            format!(
                "[![telnet](https://iacscope.example/badge/mud.example.org/4000.svg)]\
                 (https://iacscope.example/s/{ID})"
            )
        );
        assert_eq!(
            s.mediawiki,
            format!("[https://iacscope.example/s/{ID} mud.example.org:4000 telnet fingerprint]")
        );
    }

    #[test]
    fn a_hostile_host_stays_inert() {
        let host = "x\"><script>alert(1)</script>](javascript:1)|]]{{x}}\n";
        let s = Snippets::new("http://127.0.0.1:8080", ID, host, 23);
        // One element, no markup from the host.
        assert_eq!(s.iframe.matches('<').count(), 2, "{}", s.iframe);
        assert!(!s.iframe.contains("<script"));
        assert!(s.iframe.contains("&quot;&gt;&lt;script&gt;"));
        // The host is one encoded path segment of the badge URL.
        assert!(s.markdown.starts_with(
            "[![telnet](http://127.0.0.1:8080/badge/x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%5D%28javascript%3A1%29%7C%5D%5D%7B%7Bx%7D%7D%0A/23.svg)]"
        ));
        assert_eq!(s.markdown.matches("](").count(), 2);
        // The wiki label cannot close the link or open a template.
        let label = s
            .mediawiki
            .strip_prefix(&format!("[http://127.0.0.1:8080/s/{ID} "))
            .and_then(|l| l.strip_suffix(" telnet fingerprint]"))
            .expect("one link");
        assert!(
            !label.contains(['[', ']', '{', '}', '|', '<', '>', '\n']),
            "{label}"
        );
        assert_eq!(target("::1", 23), "[::1]:23");
        assert_eq!(wiki_text("[::1]:23"), "&#91;::1&#93;:23");
    }
}
