//! The few HTML pieces the reports are made of: escaping, tables, one page skeleton with
//! its stylesheet inline (no network, no JavaScript).

/// `text` with `& < > " '` escaped, safe inside elements and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as an `src` / `href` value: each segment percent-encoded where needed.
pub fn url(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A table; cells are HTML already (escape text first). A row whose first cell starts
/// with `!` gets the `diff` class (the `!` is dropped).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table>\n<tr>");
    for h in header {
        t += &format!("<th>{}</th>", escape(h));
    }
    t += "</tr>\n";
    for row in rows {
        let diff = row.first().is_some_and(|c| c.starts_with('!'));
        t += if diff { "<tr class=\"diff\">" } else { "<tr>" };
        for (i, cell) in row.iter().enumerate() {
            let cell = if i == 0 && diff { &cell[1..] } else { cell.as_str() };
            t += &format!("<td>{cell}</td>");
        }
        t += "</tr>\n";
    }
    t + "</table>\n"
}

/// A whole page. `refresh_s`: reload every so many seconds (a run still training).
pub fn page(title: &str, refresh_s: Option<u32>, body: &str) -> String {
    let refresh = refresh_s.map_or(String::new(), |s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n"));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"generator\" content=\"ganzoo\">\n{refresh}<title>{}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1320px;
       padding: 0 1em; color: #222; background: #fff; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 1em; margin: 1em 0; }
.warn.bad { background: #fdecea; border-left-color: #d93025; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } tr.diff td { background: #fff8d6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
.charts { display: flex; flex-wrap: wrap; gap: 0.6em; }
.timeline { display: flex; flex-wrap: wrap; gap: 0.8em; }
.timeline figure { margin: 0; width: 200px; } .timeline img { width: 200px; image-rendering: pixelated; }
figcaption { font-size: 0.85em; color: #555; text-align: center; }
img.latest { width: 560px; image-rendering: pixelated; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.88em; }
";

/// The `src` and `href` values of a page that name files (data URLs left out): what
/// must exist beside the page for it to show whole.
pub fn local_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let value = part.split('"').next().unwrap_or_default();
            if !value.starts_with("data:") {
                found.push(value.to_string());
            }
        }
    }
    found
}
