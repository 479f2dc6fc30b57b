from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FactoryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNSPECIFIED: _ClassVar[FactoryStatus]
    UP: _ClassVar[FactoryStatus]
    DEGRADED: _ClassVar[FactoryStatus]
    DOWN: _ClassVar[FactoryStatus]
UNSPECIFIED: FactoryStatus
UP: FactoryStatus
DEGRADED: FactoryStatus
DOWN: FactoryStatus

class FactoryStatusUpdate(_message.Message):
    __slots__ = ("factory_id", "status", "reason")
    FACTORY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    factory_id: str
    status: FactoryStatus
    reason: str
    def __init__(self, factory_id: _Optional[str] = ..., status: _Optional[_Union[FactoryStatus, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("accepted", "detail", "orders_moved")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ORDERS_MOVED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    detail: str
    orders_moved: int
    def __init__(self, accepted: _Optional[bool] = ..., detail: _Optional[str] = ..., orders_moved: _Optional[int] = ...) -> None: ...

class CapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FactoryCapacity(_message.Message):
    __slots__ = ("factory_id", "status", "capacity", "load", "free")
    FACTORY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    factory_id: str
    status: FactoryStatus
    capacity: int
    load: int
    free: int
    def __init__(self, factory_id: _Optional[str] = ..., status: _Optional[_Union[FactoryStatus, str]] = ..., capacity: _Optional[int] = ..., load: _Optional[int] = ..., free: _Optional[int] = ...) -> None: ...

class CapacityResponse(_message.Message):
    __slots__ = ("factories",)
    FACTORIES_FIELD_NUMBER: _ClassVar[int]
    factories: _containers.RepeatedCompositeFieldContainer[FactoryCapacity]
    def __init__(self, factories: _Optional[_Iterable[_Union[FactoryCapacity, _Mapping]]] = ...) -> None: ...
