//! Prints the README's configuration table from kp's config registry:
//! `cargo run --example print_config_table`.
fn main() {
    print!("{}", kp::config::markdown_table());
}
