/* device.h: where the kernels run, chosen once at run time (`--device cpu|cuda`).
   Selecting CUDA checks that this build has it and that a device answers;
   from then on qn_linear_init gives compressed linears a GPU plan (the CUDA
   backend comes before the CPU in the registry) and the model uploads its
   weights for the GPU forward pass (kernels/cuda/model.h). */
#ifndef QN_DEVICE_H
#define QN_DEVICE_H
#include <stdbool.h>
#include "status.h"

typedef enum { QN_DEVICE_CPU = 0, QN_DEVICE_CUDA } qn_device;

/* "cpu" or "cuda"; anything else is QN_ERR_ARG naming the choices. */
qn_status   qn_device_parse(const char *name, qn_device *out, qn_err *err);
const char *qn_device_name(qn_device d);
/* Whether this binary was built with nvcc (the CUDA code is linked in). */
bool        qn_device_cuda_built(void);

/* Fails with QN_ERR_UNSUPPORTED (built without CUDA) or QN_ERR_DEVICE (no
   usable device, with the driver's reason) and keeps the previous choice. */
qn_status   qn_kernels_set_device(qn_device d, qn_err *err);
qn_device   qn_kernels_device(void);

#endif
