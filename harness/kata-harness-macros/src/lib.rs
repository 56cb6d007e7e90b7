//! The `#[kata_harness::test]` attribute.
//!
//! Every kata test is an `async fn` that must run on tokio's paused clock and must never hang the
//! learner's terminal. Writing that by hand in every test is noise, so this attribute turns
//!
//! ```text
//! #[kata_harness::test]
//! async fn stage1_ticks() { /* ... */ }
//! ```
//!
//! into a plain `#[test] fn stage1_ticks()` whose body is handed to
//! `kata_harness::run_test`, which runs it on its own thread under a virtual-time limit and a
//! real-time watchdog. Options (all optional, comma separated):
//!
//! - `real_time`: run on the real clock instead of the paused one (say why in a comment: only
//!   what the paused clock cannot show belongs there: drift, blocking, sockets);
//! - `watchdog_secs = N`: at least N real seconds before the watchdog fails the test (default 5,
//!   or `KATA_WATCHDOG_SECS` when that is longer);
//! - `virtual_limit_secs = N`: virtual seconds before the test counts as deadlocked (default 3600);
//! - `memory_limit_mib = N`: the test's heap ceiling (default 512 MiB, or `KATA_MEMORY_LIMIT_MIB`);
//! - `file_size_limit = N`: run the test in a child process whose files fail to grow past about
//!   N bytes, like a full disk (Unix only; see `kata_harness::TestConfig::file_size_limit`);
//! - `own_process`: run the test in a child process of its own, for a test that changes what is
//!   process-wide (the current directory) while others run beside it.
//!
//! It composes with `rstest`: put `#[rstest]` and its `#[case]`s above it and rstest hands each
//! case to this attribute, as it does for `#[tokio::test]`.

use proc_macro::TokenStream;
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token, parse_macro_input};

/// Runs an `async fn` test on the paused clock under the harness watchdog. See the crate docs.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = parse_macro_input!(item as ItemFn);
    match expand(args, &mut function) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(args: TokenStream, function: &mut ItemFn) -> syn::Result<proc_macro2::TokenStream> {
    let mut paused = true;
    let mut own_process = false;
    let mut watchdog_secs: Option<u64> = None;
    let mut virtual_limit_secs: Option<u64> = None;
    let mut memory_limit_mib: Option<u64> = None;
    let mut file_size_limit: Option<u64> = None;

    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse(args)?;
    for meta in metas {
        match &meta {
            Meta::Path(path) if path.is_ident("real_time") => paused = false,
            Meta::Path(path) if path.is_ident("own_process") => own_process = true,
            Meta::NameValue(pair) if pair.path.is_ident("watchdog_secs") => {
                watchdog_secs = Some(int_value(&pair.value)?);
            }
            Meta::NameValue(pair) if pair.path.is_ident("virtual_limit_secs") => {
                virtual_limit_secs = Some(int_value(&pair.value)?);
            }
            Meta::NameValue(pair) if pair.path.is_ident("memory_limit_mib") => {
                memory_limit_mib = Some(int_value(&pair.value)?);
            }
            Meta::NameValue(pair) if pair.path.is_ident("file_size_limit") => {
                file_size_limit = Some(int_value(&pair.value)?);
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "unknown option: expected `real_time`, `own_process`, `watchdog_secs = N`, \
                     `virtual_limit_secs = N`, `memory_limit_mib = N` or `file_size_limit = N`",
                ));
            }
        }
    }

    if function.sig.asyncness.take().is_none() {
        return Err(syn::Error::new_spanned(
            function.sig.fn_token,
            "#[kata_harness::test] goes on an `async fn`",
        ));
    }
    if !function.sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &function.sig.inputs,
            "a kata test takes no arguments (use #[rstest] above this attribute for cases)",
        ));
    }
    if !matches!(function.sig.output, syn::ReturnType::Default) {
        return Err(syn::Error::new_spanned(
            &function.sig.output,
            "a kata test returns nothing: assert, or `.expect(\"why\")` a Result",
        ));
    }

    let name = &function.sig.ident;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let body = &function.block;
    let watchdog = watchdog_secs
        .map(|secs| quote!(.watchdog_at_least(::std::time::Duration::from_secs(#secs))));
    let virtual_limit = virtual_limit_secs
        .map(|secs| quote!(.virtual_limit(::std::time::Duration::from_secs(#secs))));
    let memory_limit = memory_limit_mib.map(|mib| {
        let bytes = mib << 20;
        quote!(.memory_limit(#bytes as usize))
    });
    let file_size_limit = file_size_limit.map(|bytes| quote!(.file_size_limit(#bytes)));
    let own_process = own_process.then(|| quote!(.own_process()));

    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis fn #name() {
            let config = ::kata_harness::TestConfig::new(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
            )
            .paused(#paused)
            #watchdog
            #virtual_limit
            #memory_limit
            #own_process
            #file_size_limit;
            ::kata_harness::run_test(config, move || async move #body);
        }
    })
}

fn int_value(expr: &Expr) -> syn::Result<u64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse(),
        other => Err(syn::Error::new_spanned(other, "expected a whole number")),
    }
}
