//! `docker-compose.yml` at the repository root is valid Compose: `docker-compose config`
//! (Debian package `docker-compose`, installed by `scripts/test.sh`) or, if that is missing,
//! the `docker compose` plugin. No Docker engine is needed to validate.

use std::path::PathBuf;
use std::process::{Command, Output};

fn compose(args: &[&str]) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let v1 = Command::new("docker-compose")
        .args(args)
        .current_dir(&root)
        .output();
    if let Ok(out) = v1 {
        return out;
    }
    let plugin = Command::new("docker")
        .arg("compose")
        .args(args)
        .current_dir(&root)
        .output();
    match plugin {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("unknown command") => out,
        _ => panic!(
            "neither `docker-compose` nor the `docker compose` plugin is installed: \
             install Debian's docker-compose package (scripts/test.sh does)"
        ),
    }
}

#[test]
fn docker_compose_file_validates() {
    let out = compose(&["config", "-q"]);
    assert!(
        out.status.success(),
        "docker-compose config rejected docker-compose.yml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = compose(&["config", "--services"]);
    assert!(out.status.success());
    let services = String::from_utf8_lossy(&out.stdout).into_owned();
    let names: Vec<&str> = services.lines().collect();
    assert!(names.contains(&"weftd"), "{services}");
    let hvs = names.iter().filter(|s| s.starts_with("hv")).count();
    assert!(hvs >= 3, "want at least 3 hypervisor services: {services}");
}
