//! Fuzzes configuration binding (`svcid_config::bind`): a property file that parses, whatever it
//! holds, binds into settings or into a list of problems, for either daemon, without panicking.
//! The home is a path that does not exist; binding only reads the properties given to it.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use svcid_config::{ModuleHome, ModuleKind, bind};
use svcid_properties::PropertySet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut props = PropertySet::new();
    if props
        .load_str(&text, Path::new("etc/application.properties"))
        .is_err()
    {
        // A file that does not parse never reaches binding; the properties target covers it.
        return;
    }
    for kind in [ModuleKind::Dpm, ModuleKind::Dpe] {
        let home = ModuleHome::new("/nonexistent/svcid-fuzz-home");
        match bind(kind, home, &props) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    let _ = warning.to_string();
                }
                let _ = loaded.settings.verify_policy();
            }
            Err(problems) => {
                assert!(
                    problems.iter().any(|p| p.is_error()),
                    "an Err holds an error"
                );
                for problem in &problems {
                    let _ = problem.to_string();
                }
            }
        }
    }
});
