with

source as (

    select * from {{ source('shop', 'payments') }}

),

renamed as (

    select

        ----------  ids
        id as payment_id,
        order_id,

        ---------- text
        payment_method,

        ---------- numerics
        -- amount is stored in cents, convert it to dollars
        amount / 100.0 as amount,

        ---------- timestamps
        cast(paid_at as timestamp) as paid_at

    from source

)

select * from renamed
