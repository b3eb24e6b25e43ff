//! Commit titles: the user's `--commit-message`, or one naming what the batch changes.

/// "Update config.json via hubfs", "Update config.json and 3 other files via hubfs".
pub fn default_summary(paths: &[&str]) -> String {
    match paths {
        [] => "Update via hubfs".to_string(),
        [one] => format!("Update {one} via hubfs"),
        [first, rest @ ..] => format!(
            "Update {first} and {} other file{} via hubfs",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_path_and_counts_the_rest() {
        assert_eq!(default_summary(&["a.txt"]), "Update a.txt via hubfs");
        assert_eq!(
            default_summary(&["a", "b"]),
            "Update a and 1 other file via hubfs"
        );
        assert_eq!(
            default_summary(&["a", "b", "c", "d"]),
            "Update a and 3 other files via hubfs"
        );
    }
}
