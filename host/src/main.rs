fn main() {
    // The command line is built by the foundation work (issue 2).
}
