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
//! Cases: a test that takes arguments lists the values under the attribute, one `#[case]` each,
//! and marks every argument `#[case]`, as rstest spells it:
//!
//! ```text
//! #[kata_harness::test]
//! #[case::zero(0, 0)]
//! #[case::one_interval(50, 1)]
//! async fn stage1_tick_count(#[case] total: u64, #[case] expected: u32) { /* ... */ }
//! ```
//!
//! Each case becomes a test of its own, named as rstest names them (`stage1_tick_count::case_1_zero`,
//! `case_01_...` from ten cases on), so a learner can run one case by name and a failure says
//! which case it was. The case values are evaluated inside the test, on its runtime. This is the
//! one rstest feature the suites use; doing it here keeps rstest's proc-macro crate, and the
//! second major version of syn and the regex engine it builds, out of a learner's first build.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{ToTokens, format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, Meta, Token, Visibility, parse_macro_input,
};

/// Runs an `async fn` test on the paused clock under the harness watchdog. See the crate docs.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function = parse_macro_input!(item as ItemFn);
    match expand(args, &mut function) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(args: TokenStream, function: &mut ItemFn) -> syn::Result<TokenStream2> {
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
    if !matches!(function.sig.output, syn::ReturnType::Default) {
        return Err(syn::Error::new_spanned(
            &function.sig.output,
            "a kata test returns nothing: assert, or `.expect(\"why\")` a Result",
        ));
    }

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
    // One test function: `#name` is the name libtest and the watchdog report, `#call` the future
    // it runs, and `#attrs` what else the test carries (`#[should_panic]`, docs).
    let test_fn = |vis: &Visibility, name: &Ident, attrs: &[Attribute], call: TokenStream2| {
        quote! {
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
                ::kata_harness::run_test(config, move || async move #call);
            }
        }
    };

    let cases = take_cases(function)?;
    let name = &function.sig.ident;
    if cases.is_empty() {
        if let Some(argument) = function.sig.inputs.first() {
            return Err(syn::Error::new_spanned(
                argument,
                "a kata test takes no arguments, unless it lists #[case(...)]s to call it with",
            ));
        }
        let body = function.block.to_token_stream();
        return Ok(test_fn(&function.vis, name, &function.attrs, body));
    }

    let arguments = function.sig.inputs.len();
    for argument in &mut function.sig.inputs {
        let FnArg::Typed(typed) = argument else {
            return Err(syn::Error::new_spanned(
                argument,
                "a kata test is a free function",
            ));
        };
        let before = typed.attrs.len();
        typed.attrs.retain(|attr| !attr.path().is_ident("case"));
        if typed.attrs.len() == before {
            return Err(syn::Error::new_spanned(
                &typed.pat,
                "mark every argument of a test with cases `#[case]`",
            ));
        }
    }
    // rstest's names: numbered from 1, zero-padded to the width of the count, then the
    // description after `case::`.
    let width = cases.len().to_string().len();
    let mut tests = Vec::with_capacity(cases.len());
    for (index, case) in cases.iter().enumerate() {
        if case.values.len() != arguments {
            return Err(syn::Error::new_spanned(
                &case.attr,
                format!(
                    "this case gives {} value(s) but the test takes {arguments} argument(s)",
                    case.values.len()
                ),
            ));
        }
        let description = case
            .description
            .as_ref()
            .map(|d| format!("_{d}"))
            .unwrap_or_default();
        let case_name = format_ident!("case_{:0width$}{}", index + 1, description);
        let values = &case.values;
        let call = quote!({ super::#name(#(#values),*).await });
        tests.push(test_fn(
            &Visibility::Inherited,
            &case_name,
            &function.attrs,
            call,
        ));
    }

    // The test body stays an ordinary `async fn` beside a module of the same name that holds
    // one test per case (a module and a function do not clash: types and values are looked up
    // apart). `use super::*` lets the case values name what the suite has in scope.
    function.sig.asyncness = Some(Token![async](name.span()));
    function.attrs.clear();
    Ok(quote! {
        #function

        mod #name {
            #[allow(unused_imports)]
            use super::*;

            #(#tests)*
        }
    })
}

/// One `#[case(...)]` or `#[case::description(...)]` under the attribute.
struct Case {
    description: Option<Ident>,
    values: Vec<Expr>,
    attr: TokenStream2,
}

/// Removes the `#[case]` attributes from the function's own attributes and returns them, in order.
fn take_cases(function: &mut ItemFn) -> syn::Result<Vec<Case>> {
    let mut cases = Vec::new();
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut function.attrs) {
        let segments = &attr.path().segments;
        if segments.first().is_none_or(|first| first.ident != "case")
            || attr.path().leading_colon.is_some()
        {
            kept.push(attr);
            continue;
        }
        let description = match segments.len() {
            1 => None,
            2 => Some(segments[1].ident.clone()),
            _ => {
                return Err(syn::Error::new_spanned(
                    attr.path(),
                    "a case is `#[case(values)]` or `#[case::description(values)]`",
                ));
            }
        };
        let values = attr.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
        cases.push(Case {
            description,
            values: values.into_iter().collect(),
            attr: attr.to_token_stream(),
        });
    }
    function.attrs = kept;
    Ok(cases)
}

fn int_value(expr: &Expr) -> syn::Result<u64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse(),
        other => Err(syn::Error::new_spanned(other, "expected a whole number")),
    }
}
