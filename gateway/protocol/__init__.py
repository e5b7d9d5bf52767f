"""KServe v2 gRPC stubs generated from protos/grpc_predict_v2.proto (`make protos`).

Only this file is hand-written; the ``grpc_predict_v2_pb2*`` modules beside it are generated and
checked fresh by ``make check-protos``.
"""

from . import grpc_predict_v2_pb2 as pb
from . import grpc_predict_v2_pb2_grpc as pb_grpc

__all__ = ["pb", "pb_grpc"]
