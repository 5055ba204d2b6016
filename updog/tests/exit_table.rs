//! The exit-code table is one: `--help`, `updog.1` and README's row are rendered from
//! `updog::ExitStatus`, and the docs follow the one layout (no `generate-docs` or `help` page).

#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        std::path::Path::new(env!("CARGO_BIN_EXE_updog")),
        "updog",
        &abos_shell::exit::rows::<updog::ExitStatus>(),
    );
}
