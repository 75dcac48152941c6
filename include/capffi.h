/*
 * capffi.h - a foreign function interface in which every dangerous
 * operation is gated by a capability token.
 *
 * Include this umbrella header; each module's header can also be included
 * alone. See docs/API.md for the full reference and docs/ for guides.
 */
#ifndef CAPFFI_H
#define CAPFFI_H

#include "capffi/common.h"
#include "capffi/error.h"
#include "capffi/perm.h"
#include "capffi/ctx.h"
#include "capffi/token.h"
#include "capffi/audit.h"
#include "capffi/value.h"
#include "capffi/type.h"
#include "capffi/lib.h"
#include "capffi/fn.h"
#include "capffi/buf.h"
#include "capffi/ptr.h"
#include "capffi/view.h"
#include "capffi/obj.h"
#include "capffi/cb.h"
#include "capffi/loop.h"
#include "capffi/job.h"

#endif
