use super::*;

fn minified(text: &str) -> Vec<u8> {
    assert!(json::validate(text.as_bytes()), "{text}");
    let mut out = Vec::new();
    json::minify_into(&mut out, text.as_bytes()).unwrap();
    out
}

fn members(text: &str) -> Vec<(String, String)> {
    let object = minified(text);
    Members::of(&object)
        .map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
        .collect()
}

#[test]
fn members_of_objects_with_every_kind_of_value() {
    let table: &[(&str, &[(&str, &str)])] = &[
        ("{}", &[]),
        (r#"{"a":1}"#, &[("a", "1")]),
        (
            r#"{ "s" : "x,}\"]" , "o": {"n": [1, {"d": "}"}]}, "t": true, "z": null, "f": -1.5e3, "e": "" }"#,
            &[
                ("s", r#""x,}\"]""#),
                ("o", r#"{"n":[1,{"d":"}"}]}"#),
                ("t", "true"),
                ("z", "null"),
                ("f", "-1.5e3"),
                ("e", r#""""#),
            ],
        ),
        (r#"{"k\"ey":[],"\u0061":{}}"#, &[(r#"k\"ey"#, "[]"), (r#"\u0061"#, "{}")]),
    ];
    for (text, want) in table {
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(members(text), want, "{text}");
    }
    assert_eq!(Members::of(b"[1,2]").count(), 0, "not an object");
}

#[test]
fn array_elements_are_split_by_the_scan_that_skips_the_array() {
    let object = minified(r#"{"a":1,"batch":[{"x":[1,2]},"s,]",[3],{}],"b":{"c":[5,6]},"e":[],"t":"z"}"#);
    let mut members = Members::of(&object);
    let mut elements = vec![(9, 9)];
    let mut seen = Vec::new();
    while let Some(key) = members.next_key() {
        let value = match key {
            b"batch" | b"b" | b"e" => members.array_elements(&mut elements),
            _ => {
                let value = members.value();
                elements.clear();
                value
            }
        };
        let spans: Vec<&str> =
            elements.iter().map(|&(s, e)| std::str::from_utf8(&object[s as usize..e as usize]).unwrap()).collect();
        seen.push(format!("{}={} {spans:?}", String::from_utf8_lossy(key), String::from_utf8_lossy(value)));
        elements.push((9, 9)); // stale: the next call must not keep it
    }
    assert_eq!(
        seen,
        [
            r#"a=1 []"#,
            r#"batch=[{"x":[1,2]},"s,]",[3],{}] ["{\"x\":[1,2]}", "\"s,]\"", "[3]", "{}"]"#,
            r#"b={"c":[5,6]} []"#,
            "e=[] []",
            r#"t="z" []"#,
        ]
    );
}

#[test]
fn keys_are_compared_decoded() {
    assert!(key_is(b"api_key", "api_key"));
    assert!(key_is(br"api\u005fkey", "api_key"));
    assert!(!key_is(b"api_keys", "api_key"));
    assert!(!key_is(br"\ud800", "x"), "not Unicode: no key");
    let object = minified(r#"{"a":1,"wr\u0069teKey":"k","b":{"writeKey":2}}"#);
    assert_eq!(get(&object, "writeKey"), Some(&b"\"k\""[..]));
    assert_eq!(get(&object, "missing"), None);
}

#[test]
fn text_and_field_values() {
    assert_eq!(text(br#""a\nb""#).as_deref(), Some("a\nb"));
    assert_eq!(text(b"42").as_deref(), Some("42"));
    assert_eq!(text(b"null"), None);
    assert_eq!(Text::of(br#""u1""#), Some(Text::Literal(br#""u1""#)));
    assert_eq!(Text::of(b"7"), Some(Text::Number(b"7")));
    assert_eq!(Text::of(br#""""#), None, "an empty string is no id");
    assert_eq!(Text::of(b"{}"), None);
    let mut out = Vec::new();
    for t in [Text::Number(b"7"), Text::Literal(br#""a\"b""#), Text::Static("track"), Text::Plain("q\"")] {
        t.write(&mut out);
    }
    assert_eq!(out, br#""7""a\"b""track""q\"""#);
}

#[test]
fn objects_are_rewritten_with_members_dropped_replaced_and_merged() {
    let object = minified(
        r#"{"writeKey":"secret","context":{"ip":"1.2.3.4","app":{"v":1}},"n":1,"px":"e30","integrations":[]}"#,
    );
    let defaults = minified(r#"{"app":{"v":0},"library":{"name":"x"}}"#);
    let mut out = Vec::new();
    write_object(
        &mut out,
        &object,
        |key, _| match () {
            _ if key_is(key, "writeKey") => Edit::Drop,
            _ if key_is(key, "context") || key_is(key, "integrations") => Edit::MergeUnder(&defaults),
            _ if key_is(key, "px") => Edit::Rename("pr", b"{}"),
            _ if key_is(key, "n") => Edit::Replace(b"2"),
            _ => Edit::Keep,
        },
        &[("added", b"[1]")],
    );
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "context": {"ip": "1.2.3.4", "app": {"v": 1}, "library": {"name": "x"}},
            "n": 2, "pr": {}, "integrations": [], "added": [1]
        })
    );
    let nested = minified(r#"{"properties":{"token":"t","a":1,"tok\u0065n":2},"token":"t"}"#);
    let mut out = Vec::new();
    write_object(&mut out, &nested, |_, _| Edit::Without(&["token"]), &[]);
    assert_eq!(out, br#"{"properties":{"a":1},"token":"t"}"#, "members of that name inside the value go");
    let mut out = Vec::new();
    write_object(&mut out, b"{}", |_, _| Edit::Keep, &[("context", b"{\"a\":1}")]);
    assert_eq!(out, br#"{"context":{"a":1}}"#);
    let mut out = Vec::new();
    write_object(&mut out, br#"{"c":{}}"#, |_, _| Edit::MergeUnder(br#"{"a":1}"#), &[]);
    assert_eq!(out, br#"{"c":{"a":1}}"#);
    let mut out = Vec::new();
    write_object(&mut out, br#"{"c":{"a":1}}"#, |_, _| Edit::MergeUnder(br#"{"\u0061":2,"b":3}"#), &[]);
    assert_eq!(out, br#"{"c":{"a":1,"b":3}}"#, "an escaped spelling of an own key is that key");
    let mut out = Vec::new();
    write_object(&mut out, br#"{"only":"x"}"#, |_, _| Edit::Drop, &[]);
    assert_eq!(out, b"{}");
    // Many own keys, or an escaped one, are compared through a set: the same result.
    let many: String = (0..40).map(|i| format!(r#""k{i}":{i}"#)).collect::<Vec<_>>().join(",");
    for own in [format!("{{{many}}}"), format!(r#"{{"\u006b7":7,{}}}"#, &many[..many.len()])] {
        let object = minified(&format!(r#"{{"c":{own}}}"#));
        let defaults = minified(r#"{"k7":"default","k39":"default","new":true}"#);
        let mut out = Vec::new();
        write_object(&mut out, &object, |_, _| Edit::MergeUnder(&defaults), &[]);
        let merged: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(merged["c"]["k7"], 7, "{own:.40}");
        assert_eq!(merged["c"]["k39"], 39);
        assert_eq!(merged["c"]["new"], true);
        assert_eq!(merged["c"].as_object().unwrap().len(), 41);
    }
}
