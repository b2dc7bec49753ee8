// Package hostile reads the corpus of bad Kafka messages in testdata/hostile (see its
// README.md): each case's message, which system's topic it is read from, and what
// concord must do with it. The codecs and pipeline tests run every case; the codecs
// fuzz targets start from its messages.
package hostile
