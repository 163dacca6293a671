//! Property tests: validation never panics or hangs on random bytes or on random mutations of a
//! valid file; every rejection has at least one problem; a valid definition validates again to
//! the same hash.

use proptest::prelude::*;
use serde_json::{Value, json};
use smart_core::Defaults;
use smart_core::validate::validate_bytes;

use crate::support::repo_root;

fn validate(bytes: &[u8]) -> Result<smart_core::Experiment, smart_core::Invalid> {
    let source = repo_root().join("smart-core/tests/fixtures/fuzz.json");
    validate_bytes(bytes, &source, &Defaults::default())
}

fn full() -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("smart-core/tests/fixtures/full.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Arbitrary small JSON values.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z{} \n\t/:._-]{0,12}".prop_map(Value::from),
        Just(json!("{{ max }}")),
        Just(json!("http://127.0.0.1/")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change at a pseudo-randomly chosen place: replace a value, delete a key, or add one.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Delete(usize),
    Insert(usize, String, Value),
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any_json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), "[a-z_]{1,12}", any_json())
            .prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
    ]
}

/// Applies `mutation` to the `n`th node (pre-order) of `value`, counting down `n`.
fn mutate(value: &mut Value, mutation: &Mutation, n: &mut usize) -> bool {
    if *n == 0 {
        match mutation {
            Mutation::Replace(_, new) => *value = new.clone(),
            Mutation::Delete(_) | Mutation::Insert(..) => {
                if let Value::Object(map) = value {
                    match mutation {
                        Mutation::Delete(_) => {
                            let first = map.keys().next().cloned();
                            if let Some(k) = first {
                                map.remove(&k);
                            }
                        }
                        Mutation::Insert(_, k, v) => {
                            map.insert(k.clone(), v.clone());
                        }
                        Mutation::Replace(..) => {}
                    }
                } else if let Value::Array(items) = value {
                    items.pop();
                }
            }
        }
        return true;
    }
    *n -= 1;
    match value {
        Value::Object(map) => map.values_mut().any(|v| mutate(v, mutation, n)),
        Value::Array(items) => items.iter_mut().any(|v| mutate(v, mutation, n)),
        _ => false,
    }
}

fn check_outcome(bytes: &[u8]) {
    match validate(bytes) {
        Ok(experiment) => {
            // A valid definition is valid again, with the same hash.
            let again = serde_json::to_vec(experiment.definition()).unwrap();
            let second = validate(&again).expect("a validated definition validates again");
            assert_eq!(second.definition_hash(), experiment.definition_hash());
        }
        Err(invalid) => {
            assert!(!invalid.problems().is_empty());
            assert!(invalid.problems().iter().all(|p| !p.message().is_empty()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_outcome(&bytes);
    }

    #[test]
    fn random_mutations_of_a_valid_file_never_panic(
        mutations in prop::collection::vec(any_mutation(), 1..4)
    ) {
        let mut value = full();
        for mutation in &mutations {
            let at = match mutation {
                Mutation::Replace(at, _) | Mutation::Delete(at) | Mutation::Insert(at, ..) => *at,
            };
            let mut n = at % 120;
            mutate(&mut value, mutation, &mut n);
        }
        check_outcome(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn byte_edits_of_a_valid_file_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6)
    ) {
        let mut bytes = serde_json::to_vec_pretty(&full()).unwrap();
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => bytes.push(byte),
            }
        }
        check_outcome(&bytes);
    }
}
