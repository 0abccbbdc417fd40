"""HTTP routes for users and logins: thin over services/users.py. `POST /api/login` is the
one route that takes no token (it is how a person gets one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from spellray.schemas import LoginRequest, LoginResult, User, UserCreated, UserRequest, WhoAmI
from spellray.server.auth import Principal, Scope, current_principal, scoped
from spellray.server.services.users import UserService

router = APIRouter(prefix="/api", tags=["users"])


def service(request: Request) -> UserService:
    return UserService(request.app.state.ctx)


Service = Annotated[UserService, Depends(service)]
Caller = Annotated[Principal, Depends(current_principal)]


@router.post("/users", response_model=UserCreated, status_code=201)
@scoped(Scope.admin)
def add_user(body: UserRequest, users: Service) -> UserCreated:
    return users.add(body)


@router.post("/users/{name}/login-token", response_model=UserCreated, status_code=201)
@scoped(Scope.admin)
def new_login_token(name: str, users: Service) -> UserCreated:
    return users.login_token(name)


@router.get("/users", response_model=list[User])
def list_users(users: Service) -> list[User]:
    return users.list()


@router.post("/login", response_model=LoginResult)
@scoped(Scope.public)
def login(body: LoginRequest, users: Service) -> LoginResult:
    return users.login(body)


@router.post("/logout", status_code=204)
def logout(users: Service, caller: Caller) -> None:
    users.logout(caller)


@router.get("/whoami", response_model=WhoAmI)
@scoped(Scope.authenticated)
def whoami(caller: Caller) -> WhoAmI:
    return UserService.whoami(caller)
