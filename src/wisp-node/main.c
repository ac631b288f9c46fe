/* SPDX-License-Identifier: Apache-2.0 */
/* wisp-node: not built yet. The binary exists so the layout matches the
 * architecture (docs/status.md says when it arrives); it refuses to run
 * rather than pretend. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        puts("usage: wisp-node (not available yet: see docs/status.md)");
        return 0;
    }
    fputs("wisp-node: not available yet in this version of wisp (see docs/status.md)\n", stderr);
    return 111;
}
