//! `berth`: the command-line client.

fn main() {
    println!("berth: nothing here yet");
}
