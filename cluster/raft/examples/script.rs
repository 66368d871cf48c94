fn main() {
    let path = std::env::args().nth(1).expect("script path");
    let text = std::fs::read_to_string(&path).expect("read");
    match raft::sim::script::run_script(&text) {
        Ok(()) => println!("ok"),
        Err(e) => println!("{e}"),
    }
}
