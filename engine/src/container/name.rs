//! Container IDs and names: Docker's name rule, generated `adjective_surname` names.

use super::ContainerError;
use std::io::Read;

/// 32 random bytes as hex; like Docker, never a 12-digit prefix that reads as a number.
pub fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .is_err()
        {
            // Entropy device missing: fall back to time and PID mixed through sha256.
            use sha2::Digest;
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let h = sha2::Sha256::digest(format!("{t}-{}", std::process::id()));
            b.copy_from_slice(&h);
        }
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// Checks a user-given name (`x` or `/x`) and returns it without `/`.
pub fn validate(name: &str) -> Result<String, ContainerError> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            let rest: Vec<char> = chars.collect();
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(n.to_string())
    } else {
        Err(ContainerError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const LEFT: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "cool",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "focused",
    "friendly",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "optimistic",
    "peaceful",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "relaxed",
    "reverent",
    "romantic",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "youthful",
    "zealous",
    "zen",
];

const RIGHT: &[&str] = &[
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "banach",
    "bardeen",
    "bell",
    "bhabha",
    "boole",
    "borg",
    "bose",
    "brahmagupta",
    "cannon",
    "cerf",
    "chandrasekhar",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hawking",
    "heisenberg",
    "hopper",
    "hypatia",
    "jackson",
    "johnson",
    "kapitsa",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "mayer",
    "mccarthy",
    "meitner",
    "mendel",
    "morse",
    "newton",
    "nobel",
    "noether",
    "pascal",
    "pasteur",
    "perlman",
    "pike",
    "poincare",
    "ramanujan",
    "ritchie",
    "shannon",
    "sinoussi",
    "swirles",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volhard",
    "wilson",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A Docker-style random name; `retry` > 0 appends a digit as Docker does after conflicts.
pub fn generate(retry: u32) -> String {
    let id = new_id();
    let n = u64::from_str_radix(&id[..16], 16).unwrap_or(0);
    let l = LEFT[(n % LEFT.len() as u64) as usize];
    let r = RIGHT[((n >> 32) % RIGHT.len() as u64) as usize];
    if retry > 0 {
        format!("{l}_{r}{}", n % 10)
    } else {
        format!("{l}_{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("a.b-c_1").unwrap(), "a.b-c_1");
        for bad in ["", "/", "a", "-x", "_x", "a b", "a/b", "é1"] {
            let e = validate(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid container name ("), "{bad}: {e}");
        }
        assert!(validate(&generate(0)).is_ok());
        assert!(validate(&generate(3)).is_ok());
    }

    #[test]
    fn ids() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }
}
