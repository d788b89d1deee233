//! "Did you mean": the known name nearest to a mistyped one, for messages
//! about unknown filters, aliases, parameters and settings.

/// Edits between two words: insertions, deletions, substitutions and
/// swaps of two neighbours (the commonest typo, `widht`), each one.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The name in `names` nearest to `word` (case-insensitive), when it is
/// near enough to be a typo: at most a third of the word's letters off
/// (at least one).
pub fn nearest<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    names
        .into_iter()
        .map(|n| (distance(&word, &n.to_ascii_lowercase()), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, n)| (*d, n.len()))
        .map(|(_, n)| n)
}

/// `; did you mean `name`?` for the nearest name, or nothing.
pub fn did_you_mean<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, names).map_or_else(String::new, |n| format!("; did you mean `{n}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word_and_strangers_find_nothing() {
        let names = ["resize", "fit-in", "cover", "grayscale", "width", "height"];
        assert_eq!(nearest("resise", names), Some("resize"));
        assert_eq!(nearest("Fitin", names), Some("fit-in"));
        assert_eq!(nearest("widht", names), Some("width"));
        assert_eq!(nearest("greyscale", names), Some("grayscale"));
        assert_eq!(nearest("explode", names), None);
        assert_eq!(nearest("x", names), None);
        assert_eq!(did_you_mean("heigth", names), "; did you mean `height`?");
        assert_eq!(did_you_mean("zzz", names), "");
    }
}
