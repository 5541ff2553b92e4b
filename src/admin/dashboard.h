/* dashboard: the admin page, embedded in the binary at build time from dashboard.html. */
#ifndef GATEHOUSE_ADMIN_DASHBOARD_H
#define GATEHOUSE_ADMIN_DASHBOARD_H

#include <stddef.h>

extern const char dashboard_html[];
extern const size_t dashboard_html_len;

#endif
