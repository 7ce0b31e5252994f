//! A tiny DOM builder for the pages that render once and then stay as they are (a saved
//! result's card, the directory pages). Yew's `html!` expands every element into inline
//! code; these pages would have added tens of kilobytes to the bundle that way, while a
//! chain of calls into one small builder costs a few bytes per element. Server text only
//! ever becomes text nodes and attribute values, never markup; a link's `href` is a path
//! this app built or an `http(s)` URL.

use wasm_bindgen::UnwrapThrowExt;
use web_sys::Element;
use yew::Html;

const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// An element being built.
pub struct El(pub Element);

/// A new HTML element.
pub fn el(tag: &str) -> El {
    El(gloo::utils::document()
        .create_element(tag)
        .expect_throw("create element"))
}

/// A new SVG element.
pub fn svg(tag: &str) -> El {
    El(gloo::utils::document()
        .create_element_ns(Some(SVG_NS), tag)
        .expect_throw("create svg element"))
}

/// Whether `href` may be a link: a path on this site, or an `http(s)` URL.
pub fn safe_href(href: &str) -> bool {
    (href.starts_with('/') && !href.starts_with("//")) || crate::protocols::is_http_link(href)
}

/// `<a href>` with `text`; only [`safe_href`] targets become links (others stay text).
pub fn link(href: &str, text: &str) -> El {
    if safe_href(href) {
        el("a").attr("href", href).text(text)
    } else {
        el("span").text(text)
    }
}

impl El {
    /// Sets the class attribute (as an attribute: SVG elements have no settable
    /// `className`).
    pub fn class(self, c: &str) -> El {
        let _ = self.0.set_attribute("class", c);
        self
    }

    /// Sets an attribute (its value is text, whatever it holds).
    pub fn attr(self, k: &str, v: &str) -> El {
        let _ = self.0.set_attribute(k, v);
        self
    }

    /// Appends a text node.
    pub fn text(self, t: &str) -> El {
        let _ = self.0.append_with_str_1(t);
        self
    }

    /// Appends a child.
    pub fn child(self, c: El) -> El {
        let _ = self.0.append_child(&c.0);
        self
    }

    /// Appends every child.
    pub fn children(self, cs: impl IntoIterator<Item = El>) -> El {
        for c in cs {
            let _ = self.0.append_child(&c.0);
        }
        self
    }

    /// The element, for Yew to place as it is.
    pub fn html(self) -> Html {
        Html::VRef(self.0.into())
    }
}

/// A table: a header row of `head`, then `rows` of cells.
pub fn table(class: &str, head: &[&str], rows: impl IntoIterator<Item = Vec<El>>) -> El {
    let tr = el("tr").children(head.iter().map(|h| el("th").attr("scope", "col").text(h)));
    el("table").class(class).child(el("thead").child(tr)).child(
        el("tbody").children(
            rows.into_iter()
                .map(|cells| el("tr").children(cells.into_iter().map(|c| el("td").child(c)))),
        ),
    )
}
