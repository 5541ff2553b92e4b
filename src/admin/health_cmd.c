#include "admin/health_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/url.h"

#define HEALTH_TIMEOUT_MS 5000
#define HEALTH_MAX_BYTES  (16 * 1024 * 1024)

static const char usage_text[] =
        "usage: gatehouse health [--admin URL] [--json] [--server HOST:PORT]\n"
        "\n"
        "Shows the running gateway's backend health: each server, its health, the diagnosis\n"
        "code and the cause in one line. Exit 0 when no server is unhealthy, 1 when one is, 2\n"
        "when the admin API cannot be reached.\n"
        "\n"
        "  --admin URL      the admin listener (default http://127.0.0.1:9090)\n"
        "  --server H:P     only this server, with its probe history\n"
        "  --json           print the /backend-health document as it is\n"
        "  -h, --help       this text\n";

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "gatehouse health: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* A blocking GET with a deadline; returns the body (malloc'd) and the status. */
static char *http_get(const struct url *u, const char *target, int *status, char *err,
                      size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%u", u->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", u->host, gai_strerror(rc));
        return NULL;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(err, errlen,
                     "cannot connect to %s:%u: %s (is `gatehouse run` running, "
                     "and is admin.listen this address?)",
                     u->host, u->port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return NULL;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-health\r\n"
                     "Connection: close\r\n\r\n",
                     target, u->host);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "cannot send the request: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, HEALTH_TIMEOUT_MS) <= 0) {
            snprintf(err, errlen, "no answer from the admin API within %d s",
                     HEALTH_TIMEOUT_MS / 1000);
            free(buf);
            buf = NULL;
            break;
        }
        if (len == cap) {
            if (cap >= HEALTH_MAX_BYTES) {
                snprintf(err, errlen, "the answer is larger than %d bytes", HEALTH_MAX_BYTES);
                free(buf);
                buf = NULL;
                break;
            }
            cap *= 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !body) {
        snprintf(err, errlen, "the admin API did not answer with HTTP");
        free(buf);
        return NULL;
    }
    *status = atoi(buf + 9);
    body += 4;
    memmove(buf, body, strlen(body) + 1);
    return buf;
}

static void one_line(const char *text, char *out, size_t size)
{
    /* On one line, cut to fit a terminal row (the full text is in --json). */
    size_t j = 0;
    for (size_t i = 0; text && text[i] && j + 4 < size; i++) {
        char ch = text[i];
        if (ch == '\n' || ch == '\r' || ch == '\t')
            ch = ' ';
        if ((unsigned char)ch < 0x20)
            continue;
        out[j++] = ch;
    }
    if (j + 4 >= size)
        memcpy(out + j - 3, "...", 3);
    out[j] = '\0';
}

int health_print_table(FILE *out, json_t *doc, bool colour)
{
    int unhealthy = 0;
    const char *red = colour ? "\033[31m" : "", *green = colour ? "\033[32m" : "",
               *reset = colour ? "\033[0m" : "";
    fprintf(out, "%-14s %-16s %-24s %-10s %-26s %s\n", "POOL", "SETTINGS", "SERVER", "HEALTH",
            "CODE", "CAUSE");
    size_t i, j, k;
    json_t *pool, *settings, *server;
    json_array_foreach(json_object_get(doc, "pools"), i, pool)
    {
        json_array_foreach(json_object_get(pool, "settings"), j, settings)
        {
            json_array_foreach(json_object_get(settings, "servers"), k, server)
            {
                const char *health = json_string_value(json_object_get(server, "health"));
                const char *code = json_string_value(json_object_get(server, "code"));
                char cause[100];
                one_line(json_string_value(json_object_get(server, "message")), cause,
                         sizeof cause);
                bool bad = health && strcmp(health, "Unhealthy") == 0;
                unhealthy += bad;
                fprintf(out, "%-14s %-16s %-24s %s%-10s%s %-26s %s\n",
                        json_string_value(json_object_get(pool, "name")),
                        json_string_value(json_object_get(settings, "name")),
                        json_string_value(json_object_get(server, "address")),
                        bad ? red : (health && strcmp(health, "Healthy") == 0 ? green : ""),
                        health ? health : "?", reset, code ? code : "-", cause);
            }
        }
    }
    return unhealthy;
}

int health_cmd_main(int argc, char **argv)
{
    static const struct option opts[] = {
            {"admin", required_argument, NULL, 'a'},
            {"server", required_argument, NULL, 's'},
            {"json", no_argument, NULL, 'j'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *admin = "http://127.0.0.1:9090";
    const char *server = NULL;
    bool json = false;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            admin = optarg;
            break;
        case 's':
            server = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return fail("unknown option or missing value '%s'%s (see --help)", argv[optind - 1],
                        "");
        }
    }
    if (optind < argc)
        return fail("unexpected argument '%s'%s", argv[optind], "");
    struct url u;
    char err[512];
    if (url_parse(admin, &u, err, sizeof err) != 0)
        return fail("--admin: %s%s", err, "");
    if (u.https)
        return fail("--admin '%s': the admin API speaks plain http on loopback%s", admin, "");
    char target[600];
    if (server) {
        /* Percent-encode the few characters a host:port can hold that a query cannot. */
        size_t j = 0;
        j += (size_t)snprintf(target, sizeof target, "/backend-health?server=");
        for (const char *p = server; *p && j + 4 < sizeof target; p++) {
            if (*p == '[' || *p == ']' || *p == ':' || *p == '%' || *p == '&' || *p == ' ')
                j += (size_t)snprintf(target + j, sizeof target - j, "%%%02X", (unsigned char)*p);
            else
                target[j++] = *p;
        }
        target[j] = '\0';
    } else {
        snprintf(target, sizeof target, "/backend-health");
    }
    int status = 0;
    char *body = http_get(&u, target, &status, err, sizeof err);
    if (!body)
        return fail("%s%s", err, "");
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr);
    if (!doc || status != 200) {
        const char *msg = doc ? json_string_value(json_object_get(doc, "error")) : NULL;
        fprintf(stderr, "gatehouse health: %s answered %d%s%s\n", admin, status, msg ? ": " : "",
                msg ? msg : "");
        json_decref(doc);
        free(body);
        return 2;
    }
    int rc;
    if (json) {
        fputs(body, stdout);
        rc = 0;
        size_t i, j, k;
        json_t *pool, *settings, *sv;
        json_array_foreach(json_object_get(doc, "pools"), i, pool)
                json_array_foreach(json_object_get(pool, "settings"), j, settings)
                        json_array_foreach(json_object_get(settings, "servers"), k, sv)
        {
            const char *h = json_string_value(json_object_get(sv, "health"));
            if (h && strcmp(h, "Unhealthy") == 0)
                rc = 1;
        }
    } else {
        rc = health_print_table(stdout, doc, isatty(STDOUT_FILENO) && !getenv("NO_COLOR")) ? 1 : 0;
    }
    json_decref(doc);
    free(body);
    return rc;
}
