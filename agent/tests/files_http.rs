//! The agent's `/files` endpoints over real HTTP: a real actix-web server on 127.0.0.1 serving a
//! sandbox of real files, asked by a raw HTTP/1.1 client that sends request targets byte for byte
//! as written, so the traversal cases reach the server with exactly the encoding under test.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use strata_agent::http::{self, Files};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VIRTUAL: &str = "/frameworks/fw-1/executors/ex-1/runs/latest";
const SECRET: &str = "secret-content-outside";
const MAX_READ: u64 = 1024;

struct Fixture {
    _tmp: tempfile::TempDir,
    sandbox: PathBuf,
    files: Files,
    addr: std::net::SocketAddr,
    big: Vec<u8>,
}

/// Builds a sandbox with files, a subdirectory, a FIFO and symlinks in and out; a sibling
/// directory whose name extends the sandbox's; a secret file next to them; then serves the
/// sandbox under [`VIRTUAL`] and under its real path.
async fn start() -> Fixture {
    let tmp = tempfile::tempdir().expect("temp dir");
    let work = tmp.path().join("work");
    let sandbox = work.join("run-1");
    let sibling = work.join("run-1-evil");
    std::fs::create_dir_all(sandbox.join("sub/deeper")).expect("mkdir sandbox");
    std::fs::create_dir_all(&sibling).expect("mkdir sibling");
    std::fs::write(tmp.path().join("secret"), SECRET).expect("write secret");
    std::fs::write(sibling.join("secret"), SECRET).expect("write sibling secret");
    std::fs::write(sandbox.join("stdout"), "hello world\n").expect("write stdout");
    std::fs::write(sandbox.join("sub/inner.txt"), "inner\n").expect("write inner");
    let big: Vec<u8> = (0..100_000u32)
        .map(|i| {
            if i % 80 == 79 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    std::fs::write(sandbox.join("big.txt"), &big).expect("write big");
    std::fs::write(sandbox.join("blob.bin"), (0..=255u8).collect::<Vec<u8>>()).expect("write blob");
    std::fs::write(sandbox.join("utf8.txt"), "héllo wörld\n").expect("write utf-8");
    symlink("sub/inner.txt", sandbox.join("link-in")).expect("relative link in");
    symlink(sandbox.join("stdout"), sandbox.join("link-abs-in")).expect("absolute link in");
    symlink("../../secret", sandbox.join("link-out")).expect("relative link out");
    symlink(tmp.path().join("secret"), sandbox.join("link-abs-out")).expect("absolute link out");
    symlink("/etc", sandbox.join("link-etc")).expect("link to /etc");
    symlink("../run-1-evil", sandbox.join("link-sibling")).expect("link to sibling");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        sandbox.join("fifo").as_path(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");

    let files = Files::new().with_max_read_length(MAX_READ);
    files.attach(VIRTUAL, &sandbox).expect("attach virtual");
    files
        .attach(sandbox.to_str().expect("utf-8 temp path"), &sandbox)
        .expect("attach real path");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let served = files.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().configure(http::configure(served.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    Fixture {
        _tmp: tmp,
        sandbox,
        files,
        addr,
        big,
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }
}

/// Sends `GET <target>` as written and reads the whole answer (the server closes after it).
async fn get(addr: std::net::SocketAddr, target: &str) -> Response {
    match try_get(addr, target).await {
        Ok(response) => response,
        Err(error) => panic!("GET {target} failed: {error}"),
    }
}

/// [`get`], telling a connection the server cut instead of answering.
async fn try_get(addr: std::net::SocketAddr, target: &str) -> std::io::Result<Response> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {target} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        if raw.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(parse_response(&raw))
    })
    .await
    .unwrap_or_else(|_| panic!("no answer to GET {target} within 10s"))
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|window| window == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.trim(), 16).expect("hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn encode(path: &str) -> String {
    let mut out = String::new();
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_target(path: &str, params: &str) -> String {
    format!("/files/read?path={}{params}", encode(path))
}

fn names(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .expect("array")
        .iter()
        .map(|entry| entry["path"].as_str().expect("path").to_owned())
        .collect()
}

fn entry<'a>(listing: &'a Value, path: &str) -> &'a Value {
    listing
        .as_array()
        .expect("array")
        .iter()
        .find(|entry| entry["path"] == path)
        .unwrap_or_else(|| panic!("no entry {path} in {listing}"))
}

#[actix_web::test]
async fn health_answers_200_with_an_empty_body() {
    let f = start().await;
    let response = get(f.addr, "/health").await;
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
}

#[actix_web::test]
async fn browse_lists_the_sandbox_sorted_with_mesos_fields() {
    let f = start().await;
    let response = get(f.addr, &format!("/files/browse?path={VIRTUAL}")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let listing = response.json();
    let expected: Vec<String> = [
        "big.txt",
        "blob.bin",
        "fifo",
        "link-abs-in",
        "link-abs-out",
        "link-etc",
        "link-in",
        "link-out",
        "link-sibling",
        "stdout",
        "sub",
        "utf8.txt",
    ]
    .iter()
    .map(|name| format!("{VIRTUAL}/{name}"))
    .collect();
    assert_eq!(names(&listing), expected);

    let stdout = entry(&listing, &format!("{VIRTUAL}/stdout"));
    assert_eq!(stdout["size"], 12);
    assert_eq!(stdout["nlink"], 1);
    let mode = stdout["mode"].as_str().expect("mode");
    assert!(mode.starts_with("-rw"), "{mode}");
    assert_eq!(mode.len(), 10);
    let metadata = std::fs::metadata(f.sandbox.join("stdout")).expect("stat");
    assert_eq!(
        stdout["mtime"],
        std::os::unix::fs::MetadataExt::mtime(&metadata)
    );
    let uid = stdout["uid"].as_str().expect("uid");
    let owner = std::os::unix::fs::MetadataExt::uid(&metadata);
    let owner_name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner))
        .expect("user lookup")
        .map_or(owner.to_string(), |user| user.name);
    assert_eq!(uid, owner_name);
    assert!(!stdout["gid"].as_str().expect("gid").is_empty());

    assert!(
        entry(&listing, &format!("{VIRTUAL}/sub"))["mode"]
            .as_str()
            .expect("mode")
            .starts_with('d')
    );
    assert!(
        entry(&listing, &format!("{VIRTUAL}/fifo"))["mode"]
            .as_str()
            .expect("mode")
            .starts_with('p')
    );
    // A link inside is described by its target; a link out only as a link, with nothing about
    // what it points to.
    let link_in = entry(&listing, &format!("{VIRTUAL}/link-in"));
    assert_eq!(link_in["size"], 6);
    assert!(link_in["mode"].as_str().expect("mode").starts_with('-'));
    for out in ["link-out", "link-abs-out", "link-etc", "link-sibling"] {
        let link = entry(&listing, &format!("{VIRTUAL}/{out}"));
        assert!(
            link["mode"].as_str().expect("mode").starts_with('l'),
            "{out}: {link}"
        );
    }

    let sub = get(f.addr, &format!("/files/browse?path={VIRTUAL}/sub/")).await;
    assert_eq!(sub.status, 200);
    assert_eq!(
        names(&sub.json()),
        vec![
            format!("{VIRTUAL}/sub/deeper"),
            format!("{VIRTUAL}/sub/inner.txt")
        ]
    );
}

#[actix_web::test]
async fn the_sandbox_is_also_served_under_its_real_path() {
    let f = start().await;
    let real = f.sandbox.to_str().expect("utf-8 temp path");
    let response = get(
        f.addr,
        &format!("/files/browse?path={}", encode(&format!("{real}/sub"))),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        names(&response.json()),
        vec![
            format!("{real}/sub/deeper"),
            format!("{real}/sub/inner.txt")
        ]
    );
    let read = get(f.addr, &read_target(&format!("{real}/stdout"), "&offset=0")).await;
    assert_eq!(read.json()["data"], "hello world\n");
}

#[actix_web::test]
async fn read_follows_the_mesos_offset_and_length_rules() {
    let f = start().await;
    let stdout = format!("{VIRTUAL}/stdout");
    let read = |params: &'static str| {
        let target = read_target(&stdout, params);
        async move {
            let response = get(f.addr, &target).await;
            assert_eq!(response.status, 200, "{target}: {}", response.text());
            let body = response.json();
            (
                body["data"].as_str().expect("data").to_owned(),
                body["offset"].as_u64().expect("offset"),
            )
        }
    };
    // No offset, or -1: the size, no data (what the web UI's pailer asks first).
    assert_eq!(read("").await, (String::new(), 12));
    assert_eq!(read("&offset=-1").await, (String::new(), 12));
    assert_eq!(read("&offset=-1&length=5").await, (String::new(), 12));
    assert_eq!(read("&offset=0").await, ("hello world\n".to_owned(), 0));
    assert_eq!(read("&offset=6&length=5").await, ("world".to_owned(), 6));
    assert_eq!(read("&offset=6&length=-1").await, ("world\n".to_owned(), 6));
    assert_eq!(
        read("&offset=6&length=100").await,
        ("world\n".to_owned(), 6)
    );
    assert_eq!(read("&offset=3&length=0").await, (String::new(), 3));
    assert_eq!(read("&offset=12").await, (String::new(), 12));
    assert_eq!(read("&offset=1000").await, (String::new(), 1000));

    // Lengths are capped, and a client pages through the file by offsets.
    let big = format!("{VIRTUAL}/big.txt");
    let response = get(f.addr, &read_target(&big, "&offset=0&length=5000")).await;
    let body = response.json();
    let data = body["data"].as_str().expect("data");
    assert_eq!(data.len(), MAX_READ as usize);
    assert_eq!(data.as_bytes(), &f.big[..MAX_READ as usize]);
    let response = get(f.addr, &read_target(&big, "&offset=99990")).await;
    assert_eq!(
        response.json()["data"].as_str().expect("data").as_bytes(),
        &f.big[99_990..]
    );

    // Text is UTF-8; offsets and lengths count bytes.
    let utf8 = format!("{VIRTUAL}/utf8.txt");
    let response = get(f.addr, &read_target(&utf8, "&offset=0")).await;
    assert_eq!(response.json()["data"], "héllo wörld\n");
    let response = get(f.addr, &read_target(&utf8, "")).await;
    assert_eq!(response.json()["offset"], "héllo wörld\n".len());

    // A symlink that stays inside reads its target.
    let response = get(
        f.addr,
        &read_target(&format!("{VIRTUAL}/link-in"), "&offset=0"),
    )
    .await;
    assert_eq!(response.json()["data"], "inner\n");
}

#[actix_web::test]
async fn bad_requests_get_400_with_a_message_naming_the_problem() {
    let f = start().await;
    let stdout = format!("{VIRTUAL}/stdout");
    let cases = [
        ("/files/read".to_owned(), "path"),
        ("/files/read?path=".to_owned(), "path"),
        ("/files/browse".to_owned(), "path"),
        ("/files/download?path=".to_owned(), "path"),
        (read_target(&stdout, "&offset=abc"), "offset"),
        (read_target(&stdout, "&offset=-5"), "negative offset"),
        (read_target(&stdout, "&offset=1.5"), "offset"),
        (read_target(&stdout, "&length=x"), "length"),
        (
            read_target(&stdout, "&offset=0&length=-3"),
            "negative length",
        ),
        (read_target(VIRTUAL, "&offset=0"), "directory"),
        (read_target(&format!("{VIRTUAL}/sub"), ""), "directory"),
        (format!("/files/download?path={VIRTUAL}/sub"), "directory"),
        (
            format!("/files/browse?path={VIRTUAL}/stdout"),
            "not a directory",
        ),
        (
            read_target(&format!("{VIRTUAL}/fifo"), "&offset=0"),
            "regular file",
        ),
        (
            format!("/files/download?path={VIRTUAL}/fifo"),
            "regular file",
        ),
    ];
    for (target, expected) in cases {
        let response = get(f.addr, &target).await;
        assert_eq!(response.status, 400, "{target}: {}", response.text());
        assert!(
            response.text().contains(expected),
            "{target}: {:?} does not mention {expected:?}",
            response.text()
        );
    }
}

#[actix_web::test]
async fn download_streams_the_file_as_an_attachment() {
    let f = start().await;
    let response = get(f.addr, &format!("/files/download?path={VIRTUAL}/big.txt")).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    let disposition = response.header("content-disposition").expect("disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("filename=\"big.txt\""),
        "{disposition}"
    );
    assert_eq!(response.header("content-length"), Some("100000"));
    assert_eq!(response.body, f.big);

    let response = get(
        f.addr,
        &format!("/files/download?path={VIRTUAL}/sub/inner.txt"),
    )
    .await;
    assert_eq!(response.body, b"inner\n");
}

#[actix_web::test]
async fn escapes_from_the_sandbox_never_serve_content() {
    let f = start().await;
    let real = f.sandbox.to_str().expect("utf-8 temp path").to_owned();
    let sibling_real = format!("{real}-evil/secret");
    let paths = [
        // Plain, percent-encoded, mixed-case and double-encoded parents.
        format!("{VIRTUAL}/../../../../../../secret"),
        format!("{VIRTUAL}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret"),
        format!("{VIRTUAL}/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret"),
        format!(
            "{VIRTUAL}/%252e%252e/%252e%252e/%252e%252e/%252e%252e/%252e%252e/%252e%252e/secret"
        ),
        format!("{VIRTUAL}/..%2f..%2f..%2f..%2f..%2f..%2fsecret"),
        format!("{VIRTUAL}/sub/../../../../../../../secret"),
        format!("{real}/../secret"),
        format!("{real}/%2e%2e/run-1-evil/secret"),
        // The sibling whose name extends the sandbox's, by real path and by a link to it.
        sibling_real.clone(),
        format!("{VIRTUAL}/link-sibling/secret"),
        format!("{real}/link-sibling/secret"),
        // Symlinks out: relative, absolute, to a system directory.
        format!("{VIRTUAL}/link-out"),
        format!("{VIRTUAL}/link-abs-out"),
        format!("{VIRTUAL}/link-etc/passwd"),
        // Absolute paths are virtual, not real.
        "/etc/passwd".to_owned(),
        format!(
            "{}/secret",
            Path::new(&real).parent().expect("parent").display()
        ),
    ];
    for path in &paths {
        // Targets written with `%` go as they are; the others are encoded once.
        let query = if path.contains('%') {
            path.clone()
        } else {
            encode(path)
        };
        for target in [
            format!("/files/read?path={query}&offset=0"),
            format!("/files/download?path={query}"),
            format!("/files/browse?path={query}"),
        ] {
            let response = get(f.addr, &target).await;
            assert!(
                response.status == 403 || response.status == 404,
                "{target}: {} {}",
                response.status,
                response.text()
            );
            assert!(
                !response.text().contains(SECRET),
                "{target} leaked the secret"
            );
            assert!(!response.text().contains("root:"), "{target} leaked /etc");
        }
    }
    // The same secret is there to be read, so the refusals above are the server's doing.
    assert_eq!(
        std::fs::read_to_string(&sibling_real).expect("secret"),
        SECRET
    );
}

#[actix_web::test]
async fn unknown_and_very_long_paths_are_not_found_or_refused() {
    let f = start().await;
    for target in [
        "/files/browse?path=/nothing/attached/here".to_owned(),
        format!("/files/read?path={VIRTUAL}/missing&offset=0"),
        format!("/files/download?path={VIRTUAL}/stdout/below"),
        format!("/files/browse?path={VIRTUAL}-evil"),
        "/files/browse?path=/frameworks/fw-1/executors/ex-1/runs".to_owned(),
    ] {
        let response = get(f.addr, &target).await;
        assert_eq!(response.status, 404, "{target}: {}", response.text());
    }
    // Deeper than PATH_MAX allows, a single name longer than NAME_MAX, and a path longer than
    // the endpoints accept at all (said so in a 400).
    let deep = format!("{VIRTUAL}/{}", "a/".repeat(3000));
    let long_name = format!("{VIRTUAL}/{}", "n".repeat(5000));
    let too_long = format!("{VIRTUAL}/{}", "a/".repeat(10_000));
    let response = get(f.addr, &read_target(&too_long, "&offset=0")).await;
    assert_eq!(response.status, 400);
    assert!(response.text().contains("'path' is"), "{}", response.text());
    for path in [deep, long_name] {
        let response = get(f.addr, &read_target(&path, "&offset=0")).await;
        assert!(
            (400..500).contains(&response.status),
            "{}: {}",
            response.status,
            response.text()
        );
    }
    // A request line far beyond what the server reads is refused or cut off, never served.
    let huge = format!("/files/browse?path={VIRTUAL}/{}", "x".repeat(200_000));
    if let Ok(response) = try_get(f.addr, &huge).await {
        assert!((400..500).contains(&response.status), "{}", response.status);
    }
    // The server is still serving afterwards.
    assert_eq!(get(f.addr, "/health").await.status, 200);
}

#[actix_web::test]
async fn a_detached_sandbox_is_no_longer_served() {
    let f = start().await;
    let debug = get(f.addr, "/files/debug").await;
    assert_eq!(debug.status, 200);
    let canonical = f.sandbox.canonicalize().expect("canonical");
    let expected = canonical.to_str().expect("utf-8 temp path");
    assert_eq!(debug.json()[VIRTUAL], expected);

    let stdout = read_target(&format!("{VIRTUAL}/stdout"), "&offset=0");
    assert_eq!(get(f.addr, &stdout).await.status, 200);
    assert!(f.files.detach(VIRTUAL));
    let response = get(f.addr, &stdout).await;
    assert_eq!(response.status, 404);
    assert!(!response.text().contains("hello"));
    assert!(
        get(f.addr, "/files/debug")
            .await
            .json()
            .get(VIRTUAL)
            .is_none()
    );
    // The real-path attachment is separate and still served.
    let real = read_target(&format!("{}/stdout", f.sandbox.display()), "&offset=0");
    assert_eq!(get(f.addr, &real).await.json()["data"], "hello world\n");
}
