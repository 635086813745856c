//! The module-loading configuration parsers (modprobe.d, modules-load.d)
//! and the kernel-file parsers of boot::taint on arbitrary bytes. Errors
//! are fine; panics, and answers that break the parsers' own promises, are
//! not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::boot::modprobe::{
    parse_file, parse_modprobe_conf, parse_modules_load, refused, Directive, Kind, MAX_COMMANDS,
    MAX_FILE,
};
use modseal::boot::taint::{parse_kernel_tainted, parse_module_taint, parse_proc_modules};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for parsed in [parse_modprobe_conf(data), parse_modules_load(data)] {
        let Ok(commands) = parsed else { continue };
        assert!(data.len() <= MAX_FILE);
        assert!(commands.len() <= MAX_COMMANDS);
        let mut last = 0;
        for c in &commands {
            // Line numbers are physical lines, in file order.
            assert!(c.line >= 1 && c.line as usize <= lines);
            assert!(c.line >= last);
            last = c.line;
            if let Directive::Install { module, command } | Directive::Remove { module, command } =
                &c.directive
            {
                assert!(!module.is_empty() && !command.is_empty());
                assert!(!module.contains([' ', '\t', '\n']));
                assert!(!command.contains('\n'));
            }
        }
    }
    if let Ok(file) = parse_file("etc/modprobe.d/f.conf", Kind::Modprobe, data) {
        // Allowing every command's text leaves nothing refused.
        let all = refused(std::slice::from_ref(&file), &[]);
        let texts: Vec<String> = all.iter().map(|r| r.command.clone()).collect();
        assert!(refused(std::slice::from_ref(&file), &texts).is_empty());
        for r in &all {
            assert!(!r.to_string().contains('\n'));
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(loaded) = parse_proc_modules(&text) {
        for m in &loaded {
            assert!(!m.name.is_empty() && !m.name.contains(['/', ' ', '.']));
        }
    }
    let _ = parse_module_taint(&text);
    let _ = parse_kernel_tainted(&text);
});
