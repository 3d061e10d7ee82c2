//! Server-side pagination for long lists: a page of the matching rows and the links to its
//! neighbours, so a list of 10,000 topics renders 100 rows, not a 10,000-row table.

use serde::Serialize;

/// Rows per page when the request does not say.
pub const DEFAULT_PER_PAGE: usize = 100;
/// The most rows a page may ask for (`per_page`).
pub const MAX_PER_PAGE: usize = 1_000;

/// Which page of a list is shown.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Paging {
    /// The list's name, for element ids (`topics-next`, ...).
    pub list: &'static str,
    /// This page, from 1.
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// Rows per page.
    pub per_page: usize,
    /// Rows that matched the search and filter, on every page.
    pub matching: usize,
    /// Position of the first row shown, from 1 (0 when none).
    pub first: usize,
    /// Position of the last row shown (0 when none).
    pub last: usize,
    /// Link to the previous page, if any.
    pub prev_href: Option<String>,
    /// Link to the next page, if any.
    pub next_href: Option<String>,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            list: "list",
            page: 1,
            pages: 1,
            per_page: DEFAULT_PER_PAGE,
            matching: 0,
            first: 0,
            last: 0,
            prev_href: None,
            next_href: None,
        }
    }
}

impl Paging {
    /// Keeps page `page` (clamped to the last one) of `per_page` rows of `rows` of the list
    /// named `list`; `href(n)` is the link to page `n` with the same search, filter and sort.
    pub fn cut<T>(
        list: &'static str,
        mut rows: Vec<T>,
        page: usize,
        per_page: usize,
        href: impl Fn(usize) -> String,
    ) -> (Vec<T>, Paging) {
        debug_assert!((1..=MAX_PER_PAGE).contains(&per_page));
        let per_page = per_page.clamp(1, MAX_PER_PAGE);
        let matching = rows.len();
        let pages = matching.div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let start = (page - 1) * per_page;
        let end = (start + per_page).min(matching);
        rows.truncate(end);
        let shown: Vec<T> = rows.drain(start.min(end)..).collect();
        let paging = Paging {
            list,
            page,
            pages,
            per_page,
            matching,
            first: if shown.is_empty() { 0 } else { start + 1 },
            last: end,
            prev_href: (page > 1).then(|| href(page - 1)),
            next_href: (page < pages).then(|| href(page + 1)),
        };
        (shown, paging)
    }

    /// Whether there is more than one page (the pager is shown).
    pub fn several(&self) -> bool {
        self.pages > 1
    }
}

/// Reads `page` and `per_page` query values: empty means the default; anything else must be
/// a positive number, `per_page` at most [`MAX_PER_PAGE`]. The error names the field.
pub fn parse_paging(page: &str, per_page: &str) -> Result<(usize, usize), (String, String)> {
    let num = |field: &str, v: &str, default: usize| -> Result<usize, (String, String)> {
        if v.trim().is_empty() {
            return Ok(default);
        }
        match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err((
                field.to_string(),
                format!(
                    "{field} must be a positive whole number, not '{}'",
                    v.trim().chars().take(40).collect::<String>()
                ),
            )),
        }
    };
    let page = num("page", page, 1)?;
    let per_page = num("per_page", per_page, DEFAULT_PER_PAGE)?;
    if per_page > MAX_PER_PAGE {
        return Err((
            "per_page".into(),
            format!("per_page is at most {MAX_PER_PAGE}, not {per_page}"),
        ));
    }
    Ok((page, per_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_row_once_with_links_between_them() {
        let rows: Vec<usize> = (0..250).collect();
        let mut seen = Vec::new();
        for p in 1..=3 {
            let (shown, paging) = Paging::cut("t", rows.clone(), p, 100, |n| format!("?page={n}"));
            assert_eq!(paging.pages, 3);
            assert_eq!(paging.matching, 250);
            assert_eq!(paging.prev_href.is_some(), p > 1);
            assert_eq!(
                paging.next_href,
                (p < 3).then(|| format!("?page={}", p + 1))
            );
            assert_eq!(paging.first, (p - 1) * 100 + 1);
            assert_eq!(paging.last, (p * 100).min(250));
            seen.extend(shown);
        }
        assert_eq!(seen, rows);
    }

    #[test]
    fn a_page_past_the_end_shows_the_last_and_an_empty_list_one_page() {
        let (shown, paging) = Paging::cut("t", (0..5).collect::<Vec<_>>(), 9, 2, |n| n.to_string());
        assert_eq!((shown, paging.page, paging.pages), (vec![4], 3, 3));
        let (shown, paging) = Paging::cut("t", Vec::<u8>::new(), 1, 100, |n| n.to_string());
        assert!(shown.is_empty());
        assert_eq!(
            (paging.page, paging.pages, paging.first, paging.last),
            (1, 1, 0, 0)
        );
        assert!(!paging.several());
    }

    #[test]
    fn paging_values_are_checked_and_name_their_field() {
        assert_eq!(parse_paging("", ""), Ok((1, DEFAULT_PER_PAGE)));
        assert_eq!(parse_paging("3", "50"), Ok((3, 50)));
        for (page, per_page, field) in [
            ("0", "", "page"),
            ("x", "", "page"),
            ("-1", "", "page"),
            ("", "0", "per_page"),
            ("", "1001", "per_page"),
            ("", "99999999999999999999999", "per_page"),
        ] {
            assert_eq!(
                parse_paging(page, per_page).unwrap_err().0,
                field,
                "{page} {per_page}"
            );
        }
    }
}
