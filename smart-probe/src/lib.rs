//! HTTP measurement for `smart`: an open-loop probe that sends requests on a fixed timetable and
//! records latencies from each request's intended send time in an HdrHistogram.
