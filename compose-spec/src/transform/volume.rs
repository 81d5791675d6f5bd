//! The short volume syntax (`src:dst:opts`), parsed as compose-go's `format.ParseVolume`.

/// A parsed short volume spec, with only the fields the short syntax can set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShortVolume {
    /// `bind` or `volume`.
    pub kind: &'static str,
    /// Host path or volume name; empty for an anonymous volume.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// `ro` was given.
    pub read_only: bool,
    /// `z` or `Z`.
    pub selinux: Option<String>,
    /// One of the propagation modes.
    pub propagation: Option<String>,
    /// `nocopy` was given.
    pub nocopy: bool,
    /// compose-go leaves the `volume` section unset for one- and two-character specs.
    pub no_volume_section: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// Parse a short volume spec; the error text follows compose-go's.
pub fn parse_volume(spec: &str) -> Result<ShortVolume, String> {
    let mut v = ShortVolume::default();
    match spec.chars().count() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            v.target = spec.to_string();
            v.kind = "volume";
            v.no_volume_section = true;
            return Ok(v);
        }
        _ => {}
    }
    let chars: Vec<char> = spec.chars().collect();
    let mut buffer: Vec<char> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i <= chars.len() {
        let c = chars.get(i).copied();
        if c == Some('$') && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            buffer.push('$');
        } else if c == Some('}') && depth > 0 {
            depth -= 1;
            buffer.push('}');
        } else if c == Some(':') && buffer.len() == 1 && buffer[0].is_alphabetic() {
            // A Windows drive letter (`c:`).
            buffer.push(':');
        } else if (c == Some(':') || c.is_none()) && depth == 0 {
            if let Err(e) = populate(c.is_none(), &buffer, &mut v) {
                return Err(format!("invalid spec: {spec}: {e}"));
            }
            buffer.clear();
        } else if let Some(c) = c {
            buffer.push(c);
        }
        i += 1;
    }
    v.kind = if is_file_path(&v.source) {
        "bind"
    } else {
        "volume"
    };
    Ok(v)
}

fn populate(end: bool, buffer: &[char], v: &mut ShortVolume) -> Result<(), &'static str> {
    let s: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() && end {
        v.target = s;
        return Ok(());
    }
    if v.source.is_empty() {
        v.source = s;
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = s;
        return Ok(());
    }
    if !end {
        return Err("too many colons");
    }
    for option in s.split(',') {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.nocopy = true,
            "z" | "Z" => v.selinux = Some(option.to_string()),
            p if PROPAGATIONS.contains(&p) => v.propagation = Some(p.to_string()),
            // compose-go ignores options it does not know.
            _ => {}
        }
    }
    Ok(())
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(first, '.' | '/' | '~') || source.starts_with("\\\\") {
        return true;
    }
    first.is_alphabetic() && chars.next() == Some(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_volumes() {
        let v = parse_volume("./data:/data:ro,z").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.target.as_str(), v.read_only),
            ("bind", "./data", "/data", true)
        );
        assert_eq!(v.selinux.as_deref(), Some("z"));
        let v = parse_volume("/var/lib/anonymous").unwrap();
        assert_eq!((v.kind, v.source.as_str()), ("volume", ""));
        let v = parse_volume("data:/x:nocopy").unwrap();
        assert!(v.nocopy);
        assert!(parse_volume("ab:cd:ef:gh").is_err());
        assert!(parse_volume("ab::c").is_err());
        let v = parse_volume("c:\\data:/data").unwrap();
        assert_eq!((v.kind, v.source.as_str()), ("bind", "c:\\data"));
        let v = parse_volume("${A:-x}:/data").unwrap();
        assert_eq!(v.source, "${A:-x}");
    }
}
