//! The frame of every page: the head (our stylesheet and scripts only, htmx told not
//! to evaluate anything), the navigation, the sign-out button, the place for action
//! messages.

use maud::{DOCTYPE, Markup, html};

use crate::web::auth::Caller;

/// The pages of the navigation.
pub const NAV: [(&str, &str); 3] = [
    ("/", "Overview"),
    ("/punches", "Punches"),
    ("/problems", "Problems"),
];

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
        title { (title) " · iclock-sync" }
        link rel="stylesheet" href="/assets/dashboard.css";
    }
}

/// A signed-in page: `current` is its navigation path.
pub fn page(title: &str, current: &str, caller: &Caller, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head(title))
                meta name="csrf-token" content=(caller.csrf.as_deref().unwrap_or(""));
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/dashboard.js" defer {}
            }
            body data-live="on" {
                header {
                    strong { "iclock-sync" }
                    nav {
                        @for (path, name) in NAV {
                            @if path == current {
                                a href=(path) aria-current="page" { (name) }
                            } @else {
                                a href=(path) { (name) }
                            }
                        }
                    }
                    form method="post" action="/logout" { button.plain type="submit" { "Sign out" } }
                }
                main {
                    div #flash role="status" {}
                    (body)
                }
            }
        }
    }
}

/// A page outside the session (sign in, not found).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body { main { (body) } }
        }
    }
}
