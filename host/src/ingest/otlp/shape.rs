//! Which fields of an `ExportMetricsServiceRequest` allocate once decoded
//! (opentelemetry-proto's types), for [`decoded_size`](crate::ingest::decoded_size).
//! Field numbers are those of the upstream `.proto` files; `bytes` fields
//! are `Vec<u8>` in these types, so they count as owned text.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exponential_histogram_data_point::Buckets,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::ingest::decoded_size::{Field, ScalarWire, Shape};

const INLINE_TEXT: Field = Field::Text { element: 0 };
const REPEATED_TEXT: Field = Field::Text {
    element: size_of::<String>(),
};

pub static EXPORT_REQUEST: Shape = Shape {
    size: size_of::<ExportMetricsServiceRequest>(),
    fields: &[(1, Field::Message(&RESOURCE_METRICS))],
};

static RESOURCE_METRICS: Shape = Shape {
    size: size_of::<ResourceMetrics>(),
    fields: &[
        (1, Field::Message(&RESOURCE)),
        (2, Field::Message(&SCOPE_METRICS)),
        (3, INLINE_TEXT),
    ],
};

static RESOURCE: Shape = Shape {
    size: size_of::<Resource>(),
    fields: &[
        (1, Field::Message(&KEY_VALUE)),
        (3, Field::Message(&ENTITY_REF)),
    ],
};

static ENTITY_REF: Shape = Shape {
    size: size_of::<EntityRef>(),
    fields: &[
        (1, INLINE_TEXT),
        (2, INLINE_TEXT),
        (3, REPEATED_TEXT),
        (4, REPEATED_TEXT),
    ],
};

static SCOPE_METRICS: Shape = Shape {
    size: size_of::<ScopeMetrics>(),
    fields: &[
        (1, Field::Message(&SCOPE)),
        (2, Field::Message(&METRIC)),
        (3, INLINE_TEXT),
    ],
};

static SCOPE: Shape = Shape {
    size: size_of::<InstrumentationScope>(),
    fields: &[
        (1, INLINE_TEXT),
        (2, INLINE_TEXT),
        (3, Field::Message(&KEY_VALUE)),
    ],
};

static METRIC: Shape = Shape {
    size: size_of::<Metric>(),
    fields: &[
        (1, INLINE_TEXT),
        (2, INLINE_TEXT),
        (3, INLINE_TEXT),
        (5, Field::Message(&GAUGE)),
        (7, Field::Message(&SUM)),
        (9, Field::Message(&HISTOGRAM)),
        (10, Field::Message(&EXPONENTIAL_HISTOGRAM)),
        (11, Field::Message(&SUMMARY)),
        (12, Field::Message(&KEY_VALUE)),
    ],
};

static GAUGE: Shape = Shape {
    size: size_of::<Gauge>(),
    fields: &[(1, Field::Message(&NUMBER_POINT))],
};

static SUM: Shape = Shape {
    size: size_of::<Sum>(),
    fields: &[(1, Field::Message(&NUMBER_POINT))],
};

static HISTOGRAM: Shape = Shape {
    size: size_of::<Histogram>(),
    fields: &[(1, Field::Message(&HISTOGRAM_POINT))],
};

static EXPONENTIAL_HISTOGRAM: Shape = Shape {
    size: size_of::<ExponentialHistogram>(),
    fields: &[(1, Field::Message(&EXPONENTIAL_HISTOGRAM_POINT))],
};

static SUMMARY: Shape = Shape {
    size: size_of::<Summary>(),
    fields: &[(1, Field::Message(&SUMMARY_POINT))],
};

static NUMBER_POINT: Shape = Shape {
    size: size_of::<NumberDataPoint>(),
    fields: &[
        (5, Field::Message(&EXEMPLAR)),
        (7, Field::Message(&KEY_VALUE)),
    ],
};

static HISTOGRAM_POINT: Shape = Shape {
    size: size_of::<HistogramDataPoint>(),
    fields: &[
        (6, FIXED64S),
        (7, FIXED64S),
        (8, Field::Message(&EXEMPLAR)),
        (9, Field::Message(&KEY_VALUE)),
    ],
};

const FIXED64S: Field = Field::Scalars {
    element: 8,
    wire: ScalarWire::Fixed64,
};

static EXPONENTIAL_HISTOGRAM_POINT: Shape = Shape {
    size: size_of::<ExponentialHistogramDataPoint>(),
    fields: &[
        (1, Field::Message(&KEY_VALUE)),
        (8, Field::Message(&BUCKETS)),
        (9, Field::Message(&BUCKETS)),
        (11, Field::Message(&EXEMPLAR)),
    ],
};

static BUCKETS: Shape = Shape {
    size: size_of::<Buckets>(),
    fields: &[(
        2,
        Field::Scalars {
            element: 8,
            wire: ScalarWire::Varint,
        },
    )],
};

static SUMMARY_POINT: Shape = Shape {
    size: size_of::<SummaryDataPoint>(),
    fields: &[
        (6, Field::Message(&VALUE_AT_QUANTILE)),
        (7, Field::Message(&KEY_VALUE)),
    ],
};

static VALUE_AT_QUANTILE: Shape = Shape {
    size: size_of::<ValueAtQuantile>(),
    fields: &[],
};

static EXEMPLAR: Shape = Shape {
    size: size_of::<Exemplar>(),
    fields: &[
        (4, INLINE_TEXT),
        (5, INLINE_TEXT),
        (7, Field::Message(&KEY_VALUE)),
    ],
};

static KEY_VALUE: Shape = Shape {
    size: size_of::<KeyValue>(),
    fields: &[(1, INLINE_TEXT), (2, Field::Message(&ANY_VALUE))],
};

static ANY_VALUE: Shape = Shape {
    size: size_of::<AnyValue>(),
    fields: &[
        (1, INLINE_TEXT),
        (5, Field::Message(&ARRAY_VALUE)),
        (6, Field::Message(&KEY_VALUE_LIST)),
        (7, INLINE_TEXT),
    ],
};

static ARRAY_VALUE: Shape = Shape {
    size: size_of::<ArrayValue>(),
    fields: &[(1, Field::Message(&ANY_VALUE))],
};

static KEY_VALUE_LIST: Shape = Shape {
    size: size_of::<KeyValueList>(),
    fields: &[(1, Field::Message(&KEY_VALUE))],
};
