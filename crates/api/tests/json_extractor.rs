//! The JSON extractor and the problem middleware, on a minimal app: malformed
//! JSON → 400, wrong content type → 415, oversized body → 413, wrong shape → 422
//! naming the field; each as problem+json.

#![allow(clippy::unwrap_used)]

use actix_web::middleware::from_fn;
use actix_web::{test, web, App, HttpResponse};
use punctual_api::extract::{ApiJson, MAX_BODY_BYTES};
use punctual_api::observability::observe;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Input {
    name: String,
    nested: Nested,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Nested {
    count: u32,
}

async fn echo(ApiJson(input): ApiJson<Input>) -> HttpResponse {
    HttpResponse::Ok().body(input.name)
}

async fn call(content_type: Option<&str>, body: Vec<u8>) -> (u16, serde_json::Value) {
    let app = test::init_service(
        App::new()
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/echo", web::post().to(echo))
            .wrap(from_fn(observe)),
    )
    .await;
    let mut request = test::TestRequest::post().uri("/echo").set_payload(body);
    if let Some(content_type) = content_type {
        request = request.insert_header(("content-type", content_type));
    }
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    if status == 200 {
        return (status, serde_json::Value::Null);
    }
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["status"], status);
    (status, body)
}

#[actix_web::test]
async fn valid_json_passes() {
    let (status, _) = call(
        Some("application/json"),
        br#"{"name":"a","nested":{"count":1}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let (status, body) = call(Some("application/json"), b"{\"name\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));
    let (status, _) = call(Some("application/json"), b"{} trailing".to_vec()).await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn wrong_content_type_is_415() {
    let (status, _) = call(
        Some("text/plain"),
        br#"{"name":"a","nested":{"count":1}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = call(None, br#"{"name":"a","nested":{"count":1}}"#.to_vec()).await;
    assert_eq!(status, 415);
}

#[actix_web::test]
async fn body_over_one_mebibyte_is_413() {
    let mut body = br#"{"name":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', MAX_BODY_BYTES));
    body.extend(br#"","nested":{"count":1}}"#);
    let (status, _) = call(Some("application/json"), body).await;
    assert_eq!(status, 413);
}

#[actix_web::test]
async fn wrong_shape_is_422_naming_the_field() {
    let (status, body) = call(
        Some("application/json"),
        br#"{"name":"a","nested":{"count":"x"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "nested.count");
    let (status, body) = call(
        Some("application/json"),
        br#"{"nested":{"count":1}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "name");
    let (status, body) = call(
        Some("application/json"),
        br#"{"name":"a","nested":{}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "nested.count");
}
