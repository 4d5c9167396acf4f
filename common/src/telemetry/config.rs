//! Trace export settings: the standard `OTEL_*` variables, read like every other setting (clap
//! `env = …`) and validated before any port is bound.

use clap::Args;

use crate::config::ConfigError;

/// The OpenTelemetry variables Tern honours, by their standard names.
#[derive(Debug, Clone, Default, Args)]
pub struct TelemetryArgs {
    /// OTLP collector URL for every signal (gRPC, e.g. http://127.0.0.1:4317). Unset: no traces.
    #[arg(
        long = "otel-exporter-otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT"
    )]
    pub otlp_endpoint: Option<String>,
    /// OTLP collector URL for traces only; wins over OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(
        long = "otel-exporter-otlp-traces-endpoint",
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )]
    pub otlp_traces_endpoint: Option<String>,
    /// OTLP transport; only `grpc` is built in.
    #[arg(
        long = "otel-exporter-otlp-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL"
    )]
    pub otlp_protocol: Option<String>,
    /// `service.name` of the exported spans (default: tern-ingress, tern-worker).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME")]
    pub service_name: Option<String>,
    /// always_on, always_off, traceidratio, parentbased_always_on (default),
    /// parentbased_always_off, parentbased_traceidratio.
    #[arg(long = "otel-traces-sampler", env = "OTEL_TRACES_SAMPLER")]
    pub traces_sampler: Option<String>,
    /// The ratio for the *traceidratio samplers, 0 to 1 (default 1).
    #[arg(long = "otel-traces-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG")]
    pub traces_sampler_arg: Option<String>,
    /// Extra resource attributes: `key=value,key2=value2` (values percent-encoded).
    #[arg(long = "otel-resource-attributes", env = "OTEL_RESOURCE_ATTRIBUTES")]
    pub resource_attributes: Option<String>,
}

/// Which traces are kept. Parent-based samplers follow the decision carried by a parent context,
/// so a delivery attempt is sampled exactly when the transaction that queued it was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// Validated trace settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Where spans go; `None`: tracing is off and costs next to nothing.
    pub endpoint: Option<String>,
    pub service_name: String,
    pub sampler: SamplerChoice,
    /// From `OTEL_RESOURCE_ATTRIBUTES`, in order, `service.name` removed (it is above).
    pub resource_attributes: Vec<(String, String)>,
}

impl TelemetryConfig {
    /// Tracing off: what tests and commands without an exporter use.
    pub fn off(service_name: &str) -> Self {
        Self {
            endpoint: None,
            service_name: service_name.to_owned(),
            sampler: SamplerChoice::ParentBasedAlwaysOn,
            resource_attributes: Vec::new(),
        }
    }
}

impl TelemetryArgs {
    /// `default_service` names the component (`tern-ingress`, `tern-worker`) when neither
    /// `OTEL_SERVICE_NAME` nor a `service.name` resource attribute does.
    pub fn validate(&self, default_service: &str) -> Result<TelemetryConfig, ConfigError> {
        let endpoint = match (&self.otlp_traces_endpoint, &self.otlp_endpoint) {
            (Some(url), _) if !url.trim().is_empty() => {
                Some(endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)?)
            }
            (_, Some(url)) if !url.trim().is_empty() => {
                Some(endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", url)?)
            }
            _ => None,
        };
        match self.otlp_protocol.as_deref().map(str::trim) {
            None | Some("" | "grpc") => {}
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    format!("'{other}' is not supported; use grpc (port 4317 of a collector)"),
                ));
            }
        }
        let mut resource_attributes = match &self.resource_attributes {
            Some(text) => resource_attributes(text)?,
            None => Vec::new(),
        };
        let from_resource = resource_attributes
            .iter()
            .position(|(key, _)| key == "service.name")
            .map(|at| resource_attributes.remove(at).1);
        let service_name = match self.service_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => from_resource.unwrap_or_else(|| default_service.to_owned()),
        };
        Ok(TelemetryConfig {
            endpoint,
            service_name,
            sampler: sampler(
                self.traces_sampler.as_deref(),
                self.traces_sampler_arg.as_deref(),
            )?,
            resource_attributes,
        })
    }
}

fn endpoint(setting: &'static str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(url.to_owned()),
        _ => Err(ConfigError::new(
            setting,
            "must be an http:// or https:// URL of an OTLP/gRPC collector, e.g. http://127.0.0.1:4317",
        )),
    }
}

fn sampler(name: Option<&str>, arg: Option<&str>) -> Result<SamplerChoice, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        let Some(text) = arg.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(1.0);
        };
        match text.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER_ARG",
                "must be a number from 0 to 1",
            )),
        }
    };
    Ok(match name.map(str::trim).unwrap_or("") {
        "" | "parentbased_always_on" => SamplerChoice::ParentBasedAlwaysOn,
        "always_on" => SamplerChoice::AlwaysOn,
        "always_off" => SamplerChoice::AlwaysOff,
        "traceidratio" => SamplerChoice::TraceIdRatio(ratio()?),
        "parentbased_always_off" => SamplerChoice::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerChoice::ParentBasedTraceIdRatio(ratio()?),
        _ => {
            return Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER",
                "one of always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off, parentbased_traceidratio",
            ));
        }
    })
}

/// `key=value` pairs separated by commas; values may be percent-encoded (W3C Baggage syntax).
fn resource_attributes(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let invalid = || {
        ConfigError::new(
            "OTEL_RESOURCE_ATTRIBUTES",
            "must be key=value pairs separated by commas",
        )
    };
    let mut pairs = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item.split_once('=').ok_or_else(invalid)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid());
        }
        let value = percent_decode(value.trim()).ok_or_else(invalid)?;
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_endpoint_means_tracing_off_with_the_component_name() {
        let config = TelemetryArgs::default()
            .validate("tern-worker")
            .expect("valid");
        assert_eq!(config, TelemetryConfig::off("tern-worker"));
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_general_one() {
        let args = TelemetryArgs {
            otlp_endpoint: Some("http://collector:4317".into()),
            otlp_traces_endpoint: Some("https://traces:4317".into()),
            ..TelemetryArgs::default()
        };
        let config = args.validate("tern-ingress").expect("valid");
        assert_eq!(config.endpoint.as_deref(), Some("https://traces:4317"));
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (
                TelemetryArgs {
                    otlp_endpoint: Some("127.0.0.1:4317".into()),
                    ..TelemetryArgs::default()
                },
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                TelemetryArgs {
                    otlp_protocol: Some("http/protobuf".into()),
                    ..TelemetryArgs::default()
                },
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                TelemetryArgs {
                    traces_sampler: Some("sometimes".into()),
                    ..TelemetryArgs::default()
                },
                "OTEL_TRACES_SAMPLER",
            ),
            (
                TelemetryArgs {
                    traces_sampler: Some("traceidratio".into()),
                    traces_sampler_arg: Some("1.5".into()),
                    ..TelemetryArgs::default()
                },
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                TelemetryArgs {
                    resource_attributes: Some("novalue".into()),
                    ..TelemetryArgs::default()
                },
                "OTEL_RESOURCE_ATTRIBUTES",
            ),
        ];
        for (args, setting) in cases {
            let error = args.validate("tern-ingress").expect_err(setting);
            assert_eq!(error.setting, setting);
        }
    }

    #[test]
    fn samplers_parse_with_their_ratio() {
        let cases = [
            (None, None, SamplerChoice::ParentBasedAlwaysOn),
            (Some("always_off"), None, SamplerChoice::AlwaysOff),
            (Some("traceidratio"), None, SamplerChoice::TraceIdRatio(1.0)),
            (
                Some("parentbased_traceidratio"),
                Some("0.25"),
                SamplerChoice::ParentBasedTraceIdRatio(0.25),
            ),
        ];
        for (name, arg, expected) in cases {
            assert_eq!(sampler(name, arg).expect("valid"), expected, "{name:?}");
        }
    }

    #[test]
    fn resource_attributes_decode_and_service_name_comes_from_them_when_unset() {
        let args = TelemetryArgs {
            resource_attributes: Some(
                "deployment.environment=prod, service.name=mx-in,team=mail%20ops".into(),
            ),
            ..TelemetryArgs::default()
        };
        let config = args.validate("tern-ingress").expect("valid");
        assert_eq!(config.service_name, "mx-in");
        assert_eq!(
            config.resource_attributes,
            [
                ("deployment.environment".to_owned(), "prod".to_owned()),
                ("team".to_owned(), "mail ops".to_owned())
            ]
        );
        let named = TelemetryArgs {
            service_name: Some("tern-a".into()),
            ..args
        };
        assert_eq!(
            named.validate("tern-ingress").expect("valid").service_name,
            "tern-a"
        );
    }
}
