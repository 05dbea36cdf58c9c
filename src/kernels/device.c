/* device.c: the run-time choice of device (see device.h). */
#include "kernels/device.h"

#include <string.h>

#include "kernels/cuda/runtime.h"

static qn_device g_device = QN_DEVICE_CPU;

qn_status qn_device_parse(const char *name, qn_device *out, qn_err *err)
{
    if (strcmp(name, "cpu") == 0) *out = QN_DEVICE_CPU;
    else if (strcmp(name, "cuda") == 0) *out = QN_DEVICE_CUDA;
    else return qn_err_set(err, QN_ERR_ARG, "--device: expected cpu or cuda, found '%s'", name);
    return QN_OK;
}

const char *qn_device_name(qn_device d)
{
    return d == QN_DEVICE_CUDA ? "cuda" : "cpu";
}

bool qn_device_cuda_built(void)
{
    return qn_cu_built();
}

qn_status qn_kernels_set_device(qn_device d, qn_err *err)
{
    if (d == QN_DEVICE_CUDA) {
        qn_status s = qn_cu_probe(NULL, 0, err);
        if (s) {
            qn_err_prefix(err, "--device cuda: ");
            return s;
        }
    }
    g_device = d;
    return QN_OK;
}

qn_device qn_kernels_device(void)
{
    return g_device;
}
