//! Reads the import section of a `.wasm` file, so xtask can prove the engine needs nothing from
//! the host (no `env` imports) without an external tool. Only the parts of the binary format
//! needed to walk sections and imports are decoded.

use anyhow::{bail, ensure, Context, Result};

/// One entry of a module's import section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: &'static str,
}

/// The section id of the import section (WebAssembly core spec, 5.5.2).
const IMPORT_SECTION: u8 = 2;

/// Lists every import of a WebAssembly module.
pub fn imports(wasm: &[u8]) -> Result<Vec<Import>> {
    let mut r = Reader {
        bytes: wasm,
        pos: 0,
    };
    ensure!(
        r.take(4)? == b"\0asm",
        "not a WebAssembly module (bad magic)"
    );
    let version = r.take(4)?;
    ensure!(
        version == [1, 0, 0, 0],
        "unsupported WebAssembly version {version:?}"
    );
    let mut out = Vec::new();
    while !r.at_end() {
        let id = r.byte()?;
        let size = r.leb_u32()? as usize;
        let body = r
            .take(size)
            .context("section runs past the end of the file")?;
        if id == IMPORT_SECTION {
            read_imports(body, &mut out)?;
        }
    }
    Ok(out)
}

fn read_imports(body: &[u8], out: &mut Vec<Import>) -> Result<()> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let count = r.leb_u32()?;
    for _ in 0..count {
        let module = r.name()?;
        let name = r.name()?;
        let kind = match r.byte()? {
            0x00 => {
                r.leb_u32()?; // type index
                "func"
            }
            0x01 => {
                r.ref_type()?;
                r.limits()?;
                "table"
            }
            0x02 => {
                r.limits()?;
                "memory"
            }
            0x03 => {
                r.val_type()?;
                r.byte()?; // mutability
                "global"
            }
            0x04 => {
                r.byte()?; // tag attribute (0 = exception)
                r.leb_u32()?; // type index
                "tag"
            }
            other => bail!("unknown import kind 0x{other:02x} for {module}.{name}"),
        };
        out.push(Import { module, name, kind });
    }
    ensure!(r.at_end(), "trailing bytes in the import section");
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).context("length overflow")?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .context("unexpected end of wasm data")?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// Unsigned LEB128, at most 5 bytes for a u32.
    fn leb_u32(&mut self) -> Result<u32> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(value).context("LEB128 value exceeds u32");
            }
        }
        bail!("LEB128 u32 longer than 5 bytes")
    }

    /// Unsigned LEB128 up to 64 bits (memory64 limits).
    fn leb_u64(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(7 * i).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bail!("LEB128 u64 longer than 10 bytes")
    }

    fn name(&mut self) -> Result<String> {
        let len = self.leb_u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).context("import name is not UTF-8")
    }

    /// Limits: a flags byte (bit 0: has maximum; bit 1: shared; bit 2: 64-bit), then min [max].
    fn limits(&mut self) -> Result<()> {
        let flags = self.byte()?;
        ensure!(flags <= 0x07, "unknown limits flags 0x{flags:02x}");
        self.leb_u64()?;
        if flags & 0x01 != 0 {
            self.leb_u64()?;
        }
        Ok(())
    }

    /// A reference type: funcref/externref shorthands, or `(ref null? heaptype)` from the
    /// function-references proposal.
    fn ref_type(&mut self) -> Result<()> {
        match self.byte()? {
            0x63 | 0x64 => {
                self.heap_type()?;
            }
            _ => {} // single-byte shorthand (0x70 funcref, 0x6f externref, ...)
        }
        Ok(())
    }

    fn heap_type(&mut self) -> Result<()> {
        // Abstract heap types are single negative bytes; concrete ones are a signed LEB128
        // type index. Both end at the first byte without the continuation bit.
        while self.byte()? & 0x80 != 0 {}
        Ok(())
    }

    fn val_type(&mut self) -> Result<()> {
        match self.byte()? {
            0x63 | 0x64 => self.heap_type(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn module(sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        for (id, body) in sections {
            m.push(*id);
            // two-byte LEB128 on purpose, to exercise continuation bytes
            m.push((body.len() as u8 & 0x7f) | 0x80);
            m.push((body.len() >> 7) as u8);
            m.extend_from_slice(body);
        }
        m
    }

    #[test]
    fn empty_module_has_no_imports() {
        assert_eq!(imports(&module(&[])).unwrap(), vec![]);
    }

    #[test]
    fn reads_every_import_kind() {
        let mut body = vec![5u8];
        body.extend(name("env"));
        body.extend(name("abort"));
        body.extend([0x00, 0x81, 0x01]); // func, type index 129
        body.extend(name("env"));
        body.extend(name("memory"));
        body.extend([0x02, 0x01, 0x11, 0x80, 0x02]); // memory, min 17, max 256
        body.extend(name("wbg"));
        body.extend(name("table"));
        body.extend([0x01, 0x70, 0x00, 0x01]); // table funcref, min 1
        body.extend(name("wbg"));
        body.extend(name("g"));
        body.extend([0x03, 0x7f, 0x01]); // global i32 mut
        body.extend(name("x"));
        body.extend(name("t"));
        body.extend([0x04, 0x00, 0x02]); // tag, type 2
        let custom = [name("name"), vec![1, 2, 3]].concat();
        let wasm = module(&[(0, custom), (1, vec![0]), (2, body), (3, vec![0])]);
        let got = imports(&wasm).unwrap();
        let summary: Vec<String> = got
            .iter()
            .map(|i| format!("{}.{}:{}", i.module, i.name, i.kind))
            .collect();
        assert_eq!(
            summary,
            [
                "env.abort:func",
                "env.memory:memory",
                "wbg.table:table",
                "wbg.g:global",
                "x.t:tag"
            ]
        );
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(imports(b"not wasm").is_err());
        let mut wasm = module(&[(2, vec![1, 3, b'e', b'n', b'v'])]);
        assert!(imports(&wasm).is_err());
        wasm.truncate(wasm.len() - 1);
        assert!(imports(&wasm).is_err());
    }
}
