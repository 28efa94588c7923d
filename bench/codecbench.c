/*
 * codecbench.c - sp-codecbench: the codec's share of the collector's cost,
 * without MQTT or SQLite. Builds data messages of R records the way
 * sp-loadgen does (synth.c, device names like "bench-a000001-l3"), then
 * times, on one thread, what the collector's parser does with each:
 * sp_decode_data (cJSON parse in the decoder's arena, validation) and
 * sp_encode_record_tail of every record (the canonical tail the store keeps).
 * Prints one JSON object; CPU microseconds per record, best of the runs.
 *
 *   sp-codecbench [--records R] [--messages N] [--runs K]
 */
#include "synth.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TS0 1764320000000LL

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sp-codecbench [--records R (20)] [--messages N (2000)] [--runs K (5)]\n"
		   "Decodes N distinct data messages of R records and re-encodes their records,\n"
		   "K times; prints CPU us per record (best run) as JSON.\n");
}

/* An integer option in [min, max]; exits 2 with a message otherwise. */
static long option_long(const char *name, const char *text, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max) {
		fprintf(stderr, "sp-codecbench: --%s: expected an integer in %ld..%ld, got '%s'\n",
			name, min, max, text);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"records", required_argument, NULL, 'r'},
					     {"messages", required_argument, NULL, 'm'},
					     {"runs", required_argument, NULL, 'k'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	long records = 20, messages = 2000, runs = 5;
	int opt;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': records = option_long("records", optarg, 1, SP_RECORDS_MAX); break;
		case 'm': messages = option_long("messages", optarg, 1, 1000000); break;
		case 'k': runs = option_long("runs", optarg, 1, 100); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sp-codecbench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	/* the messages, encoded once; distinct so caches see what a collector sees */
	struct sp_record *recs = calloc((size_t)records, sizeof(*recs));
	struct sp_buf *payloads = calloc((size_t)messages, sizeof(*payloads));
	struct sp_decoder *dec = sp_decoder_create();
	if (recs == NULL || payloads == NULL || dec == NULL) {
		fprintf(stderr, "sp-codecbench: out of memory\n");
		return 1;
	}
	struct synth rng;
	synth_seed(&rng, 1);
	size_t bytes = 0;
	uint64_t tick = 0;
	for (long m = 0; m < messages; m++) {
		for (long r = 0; r < records; r++, tick++) {
			long k = (long)(tick % 10);
			char dev[SP_ID_MAX + 1];
			snprintf(dev, sizeof(dev), "bench-a%06ld-%c%ld", m % 100, k % 2 == 0 ? 'l' : 'c',
				 k / 2 + 1);
			synth_record(&rng, &recs[r], dev, k % 2 == 0, TS0, tick / 10);
		}
		payloads[m] = (struct sp_buf)SP_BUF_INIT(0);
		if (sp_encode_data(&payloads[m], m + 1, TS0, recs, (size_t)records)) {
			fprintf(stderr, "sp-codecbench: cannot encode\n");
			return 1;
		}
		bytes += payloads[m].len;
	}

	/* decoded once, untimed, and kept: the encoder's input for every run */
	size_t total = (size_t)messages * (size_t)records;
	struct sp_record *decoded = calloc(total, sizeof(*decoded));
	if (decoded == NULL) {
		fprintf(stderr, "sp-codecbench: out of memory\n");
		return 1;
	}
	for (long m = 0; m < messages; m++) {
		struct sp_data_msg dm;
		struct sp_reject_info why;
		if (sp_decode_data(dec, payloads[m].data, payloads[m].len, TS0 + 1000, &dm, &why) ||
		    dm.count != (size_t)records || dm.rejected != 0) {
			fprintf(stderr, "sp-codecbench: message %ld not accepted (%s)\n", m,
				sp_reject_name(why.reason));
			return 1;
		}
		memcpy(&decoded[(size_t)m * (size_t)records], dm.records,
		       (size_t)records * sizeof(*decoded));
	}

	double best_decode = 1e30, best_encode = 1e30;
	struct sp_buf out = SP_BUF_INIT(0);
	size_t out_bytes = 0;
	size_t accepted = 0;
	for (long run = 0; run < runs; run++) {
		double t0 = cpu_now();
		for (long m = 0; m < messages; m++) {
			struct sp_data_msg dm;
			struct sp_reject_info why;
			if (sp_decode_data(dec, payloads[m].data, payloads[m].len, TS0 + 1000, &dm, &why) == 0)
				accepted += dm.count - dm.rejected;
		}
		double t1 = cpu_now();
		out_bytes = 0;
		for (long m = 0; m < messages; m++) {
			sp_buf_reset(&out);
			for (long r = 0; r < records; r++) {
				const struct sp_record *rec =
					&decoded[(size_t)m * (size_t)records + (size_t)r];
				if (sp_encode_record_tail(&out, rec)) {
					fprintf(stderr, "sp-codecbench: cannot re-encode\n");
					return 1;
				}
			}
			out_bytes += out.len;
		}
		double t2 = cpu_now();
		if (t1 - t0 < best_decode)
			best_decode = t1 - t0;
		if (t2 - t1 < best_encode)
			best_encode = t2 - t1;
	}
	if (accepted != total * (size_t)runs) {
		fprintf(stderr, "sp-codecbench: %zu of %zu records accepted\n", accepted,
			total * (size_t)runs);
		return 1;
	}
	double n = (double)messages * (double)records;
	printf("{\"records\":%ld,\"messages\":%ld,\"runs\":%ld,\"payload_bytes_avg\":%.1f,"
	       "\"stored_bytes_per_record\":%.1f,\"decode_us_per_record\":%.3f,"
	       "\"encode_us_per_record\":%.3f}\n",
	       records, messages, runs, (double)bytes / (double)messages, (double)out_bytes / n,
	       best_decode / n * 1e6, best_encode / n * 1e6);
	for (long m = 0; m < messages; m++)
		sp_buf_free(&payloads[m]);
	sp_buf_free(&out);
	free(payloads);
	free(decoded);
	free(recs);
	sp_decoder_destroy(dec);
	return 0;
}
